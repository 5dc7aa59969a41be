// CAF messages to wire frames and back (docs/protocol.md). The frame's body is the one message
// of messages/api.hpp that may cross the network; an atom request (status_atom, ...) has a
// message of its own in messages/wire.proto. Nothing else can be expressed on the wire, so the
// node's own internal messages never arrive from it.
#pragma once

#include <caf/error.hpp>
#include <caf/message.hpp>

#include <cafraft/messages/wire.pb.h>

namespace cafraft {

/// Sets `f`'s body from `m`; false when `m` is not a message the wire carries. A
/// (subscribe_atom, actor[, bool]) becomes Subscribe (the actor stays on this side). The
/// protobuf message is moved out of `m` (copied first only when `m` is shared).
bool to_frame(caf::message& m, pb::Frame& f);
inline bool to_frame(caf::message&& m, pb::Frame& f) {
  return to_frame(m, f);
}

/// The message a frame's body stands for (moved out of `f`); an empty message for Done and for
/// bodies that are not messages (Hello, Welcome, Error, Ping, Pong, Subscribe).
caf::message from_frame(pb::Frame& f);

/// The body cases of the seven Raft messages between nodes.
bool is_raft_body(pb::Frame::BodyCase c);

/// An error as a frame's body, and back (cafraft errors keep code, detail and leader hint).
void to_frame(const caf::error& e, pb::Frame& f);
caf::error error_of(const pb::Frame& f);

} // namespace cafraft
