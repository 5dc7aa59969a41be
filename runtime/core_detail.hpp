// What the files of the core share (runtime/core.cpp, runtime/core_leader.cpp). Internal.
#pragma once

#include <string>
#include <utility>

#include "runtime/core.hpp"

namespace cafraft::core::detail {

/// Sends after every write asked for so far: the answer depends on them.
inline void answer(effects& fx, const std::string& to, raft_message msg) {
  fx.push_back(send{to, std::move(msg), true});
}

/// Sends at once: nothing it says depends on a write.
inline void tell(effects& fx, const std::string& to, raft_message msg) {
  fx.push_back(send{to, std::move(msg), false});
}

inline void fail(effects& fx, request_id id, errc code, std::string detail = {}) {
  fx.push_back(reply{id, failure{code, std::move(detail)}});
}

} // namespace cafraft::core::detail
