# Presence: the USB watcher (libusb hotplug on the GLib main loop) and the HID report-descriptor
# parser it decides "is this a FIDO key" with. The vendor list (fido-ids.cmake, kd-fido-ids.c)
# is optional here so each half builds without the other.
target_sources(kd_hw PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/kd-usb-watch.c
  ${CMAKE_CURRENT_LIST_DIR}/kd-hid-descriptor.c)
if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/fido-ids.cmake)
  set_property(SOURCE ${CMAKE_CURRENT_LIST_DIR}/kd-usb-watch.c APPEND PROPERTY
    COMPILE_DEFINITIONS KD_HAVE_FIDO_IDS)
endif()
