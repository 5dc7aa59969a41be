# What `cmake --install` puts under the prefix (docs/library.md):
#   include/cafraft/{actors,messages,runtime}/   the headers, and the generated protobuf headers
#   lib/libcafraft.a, libcafraft_core.a, libcafraft_proto.a
#   lib/cmake/cafraft/   find_package(cafraft 0.2 CONFIG): the targets cafraft::cafraft (and
#                        cafraft::core, cafraft::proto under it), with a version file
#                        (SameMinorVersion: before 1.0 a minor release may break the API)
#   lib/pkgconfig/cafraft.pc
include(CMakePackageConfigHelpers)

set(CAFRAFT_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/cafraft)
install(TARGETS cafraft cafraft_core cafraft_proto EXPORT cafraftTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
foreach(dir actors messages runtime)
  install(DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/${dir}/
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/cafraft/${dir}
          COMPONENT dev FILES_MATCHING PATTERN "*.hpp" PATTERN "*.proto")
endforeach()
install(FILES ${PROTO_HEADERS} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/cafraft/messages
        COMPONENT dev)
install(EXPORT cafraftTargets NAMESPACE cafraft:: DESTINATION ${CAFRAFT_CMAKE_DIR} COMPONENT dev)

configure_package_config_file(${CMAKE_CURRENT_SOURCE_DIR}/cmake/cafraftConfig.cmake.in
                              ${CMAKE_BINARY_DIR}/cafraftConfig.cmake
                              INSTALL_DESTINATION ${CAFRAFT_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/cafraftConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/cafraftConfig.cmake ${CMAKE_BINARY_DIR}/cafraftConfigVersion.cmake
              ${CMAKE_CURRENT_SOURCE_DIR}/cmake/FindCAF.cmake
        DESTINATION ${CAFRAFT_CMAKE_DIR} COMPONENT dev)

# The prefix as seen from the .pc file: the package can be installed under any --prefix.
file(RELATIVE_PATH CAFRAFT_PC_TO_PREFIX ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig
     ${CMAKE_INSTALL_PREFIX})
string(REGEX REPLACE "/$" "" CAFRAFT_PC_TO_PREFIX "${CAFRAFT_PC_TO_PREFIX}")
configure_file(${CMAKE_CURRENT_SOURCE_DIR}/cmake/cafraft.pc.in ${CMAKE_BINARY_DIR}/cafraft.pc
               @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/cafraft.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig
        COMPONENT dev)
