// The version the programs print (--version): the project's, set by CMake.
#pragma once

#ifndef CAFRAFT_VERSION
#define CAFRAFT_VERSION "unknown"
#endif
