# hw presence: kd-usb-watch against fake USB devices in a umockdev testbed (kd-usb-testbed), and
# the HID report-descriptor parser. Included from tests/CMakeLists.txt, so paths are relative
# to this file, not to CMAKE_CURRENT_SOURCE_DIR.
pkg_check_modules(KD_PRESENCE_UMOCKDEV REQUIRED IMPORTED_TARGET umockdev-1.0)
find_program(UMOCKDEV_WRAPPER umockdev-wrapper REQUIRED)

add_library(kd_test_usb STATIC ${CMAKE_CURRENT_LIST_DIR}/kd-usb-testbed.c)
target_include_directories(kd_test_usb PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(kd_test_usb PUBLIC PkgConfig::KD_PRESENCE_UMOCKDEV PkgConfig::GLIB kd_flags)

# Under umockdev the preload must come after the ASan runtime (testinfra §6).
if(KD_SANITIZE)
  execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=libasan.so
    OUTPUT_VARIABLE KD_LIBASAN OUTPUT_STRIP_TRAILING_WHITESPACE)
  set(KD_UMOCKDEV_WRAPPER env "LD_PRELOAD=${KD_LIBASAN}:libumockdev-preload.so.0")
else()
  set(KD_UMOCKDEV_WRAPPER ${UMOCKDEV_WRAPPER})
endif()

kd_cmocka(test-presence-hid SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-presence-hid.c
  LIBS kd_hw LABELS hw)
kd_cmocka(test-usb-watch SOURCES ${CMAKE_CURRENT_LIST_DIR}/test-usb-watch.c
  LIBS kd_hw kd_test_usb LABELS hw WRAPPER ${KD_UMOCKDEV_WRAPPER})
if(EXISTS ${PROJECT_SOURCE_DIR}/hw/fido-ids.cmake)
  target_compile_definitions(test-usb-watch PRIVATE KD_HAVE_FIDO_IDS)
endif()
