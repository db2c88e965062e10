# Presence: the USB watcher (libusb hotplug on the GLib main loop) and the HID report-descriptor
# parser it decides "is this a FIDO key" with (the vendor list is fido-ids.cmake).
target_sources(kd_hw PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/kd-usb-watch.c
  ${CMAKE_CURRENT_LIST_DIR}/kd-hid-descriptor.c)
