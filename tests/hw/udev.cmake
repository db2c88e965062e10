# tests/hw/udev.cmake: udev/70-keydesk-fido.rules and the FIDO USB id list behind it (label hw).
# Included from tests/CMakeLists.txt, so paths are relative to this file's directory.
set(KD_UDEV_TEST ${CMAKE_CURRENT_LIST_DIR}/test-udev.sh)
if(TARGET kd_hw AND EXISTS ${PROJECT_SOURCE_DIR}/hw/fido-ids.cmake)
  kd_test(udev-rules-generated LABELS hw
    COMMAND ${BASH} ${KD_UDEV_TEST} generated ${KD_PYTHON} ${PROJECT_SOURCE_DIR}
            ${PROJECT_BINARY_DIR}/hw/70-keydesk-fido.rules)
endif()
kd_test(udev-rules-parse LABELS hw
  COMMAND ${BASH} ${KD_UDEV_TEST} lint ${KD_PYTHON} ${PROJECT_SOURCE_DIR})
kd_test(fido-ids-gen-rejects LABELS hw
  COMMAND ${BASH} ${KD_UDEV_TEST} rejects ${KD_PYTHON} ${PROJECT_SOURCE_DIR})
# udevadm (Debian package udev) applying the rules to umockdev devices; skipped without it.
kd_test(udev-rules-umockdev LABELS hw TIMEOUT 60
  COMMAND ${BASH} ${KD_UDEV_TEST} umockdev ${KD_PYTHON} ${PROJECT_SOURCE_DIR})
set_tests_properties(udev-rules-umockdev PROPERTIES SKIP_RETURN_CODE 77)
# Only once the top CMakeLists has add_subdirectory(udev); it needs the whole build installed.
get_property(kd_udev_dir GLOBAL PROPERTY KD_UDEV_INSTALLS SET)
if(kd_udev_dir)
  kd_test(udev-install LABELS hw TIMEOUT 120
    COMMAND ${BASH} ${KD_UDEV_TEST} install ${CMAKE_BINARY_DIR} ${KD_PYTHON} ${PROJECT_SOURCE_DIR})
endif()
