# hw-make-cred: keydesk's own time in make-credential (KdKey against the soft key, minus the soft
# key's computation) and a bare fido_dev_make_cred baseline. Run: build/bench/hw-make-cred [-n N]
add_executable(hw-make-cred ${CMAKE_CURRENT_LIST_DIR}/hw-make-cred.c)
target_include_directories(hw-make-cred PRIVATE ${PROJECT_SOURCE_DIR}/tests/softkey)
target_link_libraries(hw-make-cred PRIVATE kd_hw kd_softkey kd_flags)
