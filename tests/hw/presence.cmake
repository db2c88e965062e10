# hw presence: kd-usb-watch against fake USB devices in a umockdev testbed (kd-usb-testbed), and
# the HID report-descriptor parser. Included from tests/CMakeLists.txt, so paths are relative
# to this file, not to CMAKE_CURRENT_SOURCE_DIR.
add_library(kd_test_usb STATIC ${CMAKE_CURRENT_LIST_DIR}/kd-usb-testbed.c)
target_include_directories(kd_test_usb PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(kd_test_usb PUBLIC PkgConfig::UMOCKDEV PkgConfig::GLIB kd_flags)

kd_cmocka(test-presence-hid SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-presence-hid.c
  LIBS kd_hw LABELS hw)
kd_cmocka(test-usb-watch SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-usb-watch.c
  LIBS kd_hw kd_test_usb LABELS hw WRAPPER ${KD_UMOCKDEV_WRAPPER})
