# tests/hw/udev.cmake: udev/70-keydesk-fido.rules and the FIDO USB id list behind it (label hw).
# Included from tests/CMakeLists.txt, so paths are relative to this file's directory.
set(KD_UDEV_TEST ${CMAKE_CURRENT_LIST_DIR}/test-udev.sh)
kd_test(udev-rules-generated LABELS hw
  COMMAND ${BASH} ${KD_UDEV_TEST} generated ${KD_PYTHON} ${PROJECT_SOURCE_DIR}
          ${PROJECT_BINARY_DIR}/hw/70-keydesk-fido.rules)
kd_test(udev-rules-parse LABELS hw
  COMMAND ${BASH} ${KD_UDEV_TEST} lint ${KD_PYTHON} ${PROJECT_SOURCE_DIR})
kd_test(fido-ids-gen-rejects LABELS hw
  COMMAND ${BASH} ${KD_UDEV_TEST} rejects ${KD_PYTHON} ${PROJECT_SOURCE_DIR})
# udevadm (Debian package udev) applying the rules to umockdev devices; skipped without it.
kd_test(udev-rules-umockdev LABELS hw TIMEOUT 60
  COMMAND ${BASH} ${KD_UDEV_TEST} umockdev ${KD_PYTHON} ${PROJECT_SOURCE_DIR})
set_tests_properties(udev-rules-umockdev PROPERTIES SKIP_RETURN_CODE 77)
# The whole build installed into a DESTDIR (udev/CMakeLists.txt): rules and sysusers.d snippet.
kd_test(udev-install LABELS hw TIMEOUT 120
  COMMAND ${BASH} ${KD_UDEV_TEST} install ${CMAKE_BINARY_DIR} ${KD_PYTHON} ${PROJECT_SOURCE_DIR})
