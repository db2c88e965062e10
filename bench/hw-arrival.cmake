# hw-arrival: arrival-to-"key-added" latency of kd-usb-watch under umockdev, against a bare
# libusb hotplug callback in the same process. Run: umockdev-wrapper bench/hw-arrival [-n 100]
pkg_check_modules(KD_BENCH_UMOCKDEV IMPORTED_TARGET umockdev-1.0)
if(KD_BENCH_UMOCKDEV_FOUND)
  add_executable(hw-arrival ${CMAKE_CURRENT_LIST_DIR}/hw-arrival.c
    ${PROJECT_SOURCE_DIR}/tests/hw/kd-usb-testbed.c)
  target_include_directories(hw-arrival PRIVATE ${PROJECT_SOURCE_DIR}/tests/hw)
  target_link_libraries(hw-arrival PRIVATE kd_hw PkgConfig::KD_BENCH_UMOCKDEV kd_flags)
endif()
