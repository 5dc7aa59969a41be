# Debian packages, built with `cpack -G DEB` in a build directory (docs/deployment.md):
#   cafraft          cafraft-node, cafraftctl, cafraft-console, their man pages (help2man), the
#                    systemd unit cafraft-node@.service and an example configuration; its
#                    postinst makes the system user `cafraft`
#   libcafraft-dev   the headers, the static libraries, the CMake package and the pkg-config
#                    file of cmake/install.cmake
# Components: runtime (cafraft) and dev (libcafraft-dev).

if(CAFRAFT_BUILD_APPS)
  set(CAFRAFT_PROGRAMS cafraft-node cafraftctl cafraft-console)
  install(TARGETS ${CAFRAFT_PROGRAMS} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
          COMPONENT runtime)
  # Man pages from each program's --help and --version.
  find_program(HELP2MAN help2man REQUIRED)
  set(CAFRAFT_MAN_DIR ${CMAKE_BINARY_DIR}/man)
  file(MAKE_DIRECTORY ${CAFRAFT_MAN_DIR})
  set(desc_cafraft-node "one node of a cafraft Raft cluster")
  set(desc_cafraftctl "use and operate a cafraft cluster from the command line")
  set(desc_cafraft-console "watch and inspect the actors of a running cafraft cluster")
  set(pages)
  foreach(prog ${CAFRAFT_PROGRAMS})
    add_custom_command(
      OUTPUT ${CAFRAFT_MAN_DIR}/${prog}.1
      COMMAND ${HELP2MAN} --no-info --no-discard-stderr "--name=${desc_${prog}}"
              --output=${CAFRAFT_MAN_DIR}/${prog}.1 $<TARGET_FILE:${prog}>
      DEPENDS ${prog}
      COMMENT "help2man ${prog}")
    list(APPEND pages ${CAFRAFT_MAN_DIR}/${prog}.1)
  endforeach()
  add_custom_target(cafraft-man-pages ALL DEPENDS ${pages})
  install(FILES ${pages} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT runtime)
  install(FILES ${CMAKE_CURRENT_SOURCE_DIR}/packaging/cafraft-node@.service
          DESTINATION lib/systemd/system COMPONENT runtime)
  install(FILES ${CMAKE_CURRENT_SOURCE_DIR}/packaging/example.conf
          DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/cafraft COMPONENT runtime)
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME cafraft)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "cafraft developers <cafraft@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Raft consensus on the C++ Actor Framework")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL runtime dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME cafraft)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION net)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SHLIBDEPS ON) # dpkg-shlibdeps: CAF, Protobuf, spdlog, ...
set(CPACK_DEBIAN_RUNTIME_PACKAGE_DEPENDS adduser)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_EXTRA ${CMAKE_CURRENT_SOURCE_DIR}/packaging/postinst)
set(CPACK_COMPONENT_RUNTIME_DESCRIPTION
    "cafraft-node (one node of a Raft cluster), cafraftctl and cafraft-console, with man pages
and a systemd unit (cafraft-node@NAME reads /etc/cafraft/NAME.conf)")
set(CPACK_DEBIAN_DEV_PACKAGE_NAME libcafraft-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
    "libcaf-dev (>= 0.17.6), libprotobuf-dev, libspdlog-dev, libssl-dev")
set(CPACK_COMPONENT_DEV_DESCRIPTION
    "cafraft as a C++ library: headers, static libraries, find_package(cafraft) and pkg-config")
include(CPack)
