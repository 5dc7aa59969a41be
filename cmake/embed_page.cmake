# Writes the dashboard page (IN) into a C++ source (OUT) as a raw string literal, so that
# cafraft-node serves it with nothing to install beside the binary.
file(READ "${IN}" page)
string(FIND "${page}" ")cafraft_page\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${IN} contains the literal's delimiter")
endif()
file(WRITE "${OUT}" "// Generated from apps/dashboard/index.html by cmake/embed_page.cmake.\n"
                    "namespace cafraft {\nextern const char* const dashboard_page;\n"
                    "const char* const dashboard_page = R\"cafraft_page(${page})cafraft_page\";\n"
                    "} // namespace cafraft\n")
