// What the files of the core share (runtime/core.cpp, runtime/core_leader.cpp). Internal.
#pragma once

#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include <cafraft/runtime/core.hpp>

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

/// Runs `step` (which returns the effects) and, when the node checks its invariants, checks the
/// state after it against the state before.
template <class Step> effects checked(raft_state& s, role_kind role, const env& e, Step step) {
  std::optional<before_step> before;
  if (e.cfg.check_invariants)
    before = before_step::of(s);
  auto fx = step();
  if (before) {
    bool handing_over = std::any_of(
        fx.begin(), fx.end(), [](const effect& f) { return std::holds_alternative<become>(f); });
    check(*before, s, role, handing_over);
  }
  return fx;
}

/// One step of a role: `Step` (the role's rules, a struct with an on() for every event) over
/// state, role state and event, with the invariants checked around it.
template <class Step, class Role>
effects run_step(raft_state& s, Role& r, const env& e, const event& ev, role_kind kind) {
  return checked(s, kind, e, [&] {
    Step st{s, r, e, {}};
    st.fx.reserve(8);
    std::visit([&st](const auto& x) { st.on(x); }, ev);
    return std::move(st.fx);
  });
}

} // namespace cafraft::core::detail
