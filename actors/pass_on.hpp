// Passing a message on without handling it. A node passes Raft messages and clients' requests
// straight to its current role, and a peer passes Raft messages straight to its connection:
// in the sender's thread, when the message is enqueued, so neither is scheduled for them
// (docs/architecture.md, "Hand-offs"). Everything else, and everything while there is nowhere
// to pass to, is queued and handled as before.
#pragma once

#include <mutex>
#include <utility>

#include <caf/abstract_actor.hpp>
#include <caf/actor_control_block.hpp>
#include <caf/execution_unit.hpp>
#include <caf/mailbox_element.hpp>
#include <caf/message_id.hpp>
#include <caf/system_messages.hpp>
#include <caf/type_erased_tuple.hpp>

namespace cafraft {

/// One of the seven Raft messages between nodes.
bool is_raft_message(const caf::type_erased_tuple& x);
/// A client's request that the roles serve (writes and reads).
bool is_client_request(const caf::type_erased_tuple& x);

/// Where messages are passed on to, if anywhere. The target is read and the message enqueued
/// under one lock, so that clearing the target (a role that hands over) is a clean cut: after
/// clear_if() returns, nothing more reaches the old target through here.
class pass_on {
public:
  void set(caf::strong_actor_ptr to) {
    std::lock_guard<std::mutex> guard{mx_};
    to_ = std::move(to);
  }

  /// Clears the target if it is `who`.
  void clear_if(const caf::actor_control_block* who) {
    std::lock_guard<std::mutex> guard{mx_};
    if (to_.get() == who)
      to_ = nullptr;
  }

  /// Passes nothing more, and sends the target `why` ahead of what was passed to it and is
  /// still queued there: an actor that is stopped (a node that crashes, in tests) stops at
  /// once, as when everything still queued for its role was queued at the actor itself.
  void stop(const caf::exit_msg& why, caf::execution_unit* eu) {
    std::lock_guard<std::mutex> guard{mx_};
    if (!to_)
      return;
    to_->get()->enqueue(caf::make_mailbox_element(
                            nullptr, caf::make_message_id(caf::message_priority::high), {}, why),
                        eu);
    to_ = nullptr;
  }

  /// Enqueues `x` at the target (as sent by `as`, when given) and returns true; false, with
  /// `x` untouched, when there is no target.
  bool pass(caf::mailbox_element_ptr& x, caf::execution_unit* eu,
            caf::actor_control_block* as = nullptr) {
    std::lock_guard<std::mutex> guard{mx_};
    if (!to_)
      return false;
    if (as != nullptr)
      x->sender = caf::strong_actor_ptr{as};
    to_->get()->enqueue(std::move(x), eu);
    return true;
  }

private:
  std::mutex mx_;
  caf::strong_actor_ptr to_;
};

} // namespace cafraft
