#include <cafraft/actors/wire_codec.hpp>

#include <caf/actor.hpp>
#include <caf/make_message.hpp>

#include <cafraft/messages/api.hpp>

namespace cafraft {

namespace {

using frame = pb::Frame;

/// Moves `m`'s one element of type T into the body field `field`, if `m` is exactly that.
template <class T> bool put(caf::message& m, frame& f, T* (frame::*field)()) {
  if (!m.match_elements<T>())
    return false;
  (f.*field)()->Swap(&m.get_mutable_as<T>(0));
  return true;
}

/// The same for an atom request without arguments.
template <class Atom, class T>
bool put_atom(const caf::message& m, frame& f, T* (frame::*field)()) {
  if (!m.match_elements<Atom>())
    return false;
  (f.*field)();
  return true;
}

template <class T> caf::message take(T* x) {
  return caf::make_message(std::move(*x));
}

} // namespace

bool is_raft_body(pb::Frame::BodyCase c) {
  switch (c) {
  case frame::kRequestVote:
  case frame::kRequestVoteResponse:
  case frame::kAppendEntries:
  case frame::kAppendEntriesResponse:
  case frame::kInstallSnapshot:
  case frame::kInstallSnapshotResponse:
  case frame::kTimeoutNow:
  case frame::kReadIndex:
  case frame::kReadIndexResponse:
    return true;
  default:
    return false;
  }
}

bool to_frame(caf::message& m, frame& f) {
  if (m.empty()) {
    f.mutable_done();
    return true;
  }
  if (m.match_elements<wait_leader_atom, uint64_t>()) {
    f.mutable_wait_leader()->set_term(m.get_as<uint64_t>(1));
    return true;
  }
  if (m.match_elements<recent_log_atom, uint32_t>()) {
    f.mutable_recent_log()->set_max(m.get_as<uint32_t>(1));
    return true;
  }
  if (m.match_elements<uint64_t>()) { // the answer to step_down_atom
    f.mutable_step_down_response()->set_term(m.get_as<uint64_t>(0));
    return true;
  }
  if (m.match_elements<subscribe_atom, caf::actor>()) {
    f.mutable_subscribe();
    return true;
  }
  if (m.match_elements<subscribe_atom, caf::actor, bool>()) {
    f.mutable_subscribe()->set_membership(m.get_as<bool>(2));
    return true;
  }
  return put(m, f, &frame::mutable_append_entries) ||
         put(m, f, &frame::mutable_append_entries_response) ||
         put(m, f, &frame::mutable_request_vote) ||
         put(m, f, &frame::mutable_request_vote_response) ||
         put(m, f, &frame::mutable_install_snapshot) ||
         put(m, f, &frame::mutable_install_snapshot_response) ||
         put(m, f, &frame::mutable_timeout_now) || put(m, f, &frame::mutable_read_index) ||
         put(m, f, &frame::mutable_read_index_response) || put(m, f, &frame::mutable_put) ||
         put(m, f, &frame::mutable_del) || put(m, f, &frame::mutable_cas) ||
         put(m, f, &frame::mutable_get) || put(m, f, &frame::mutable_propose) ||
         put(m, f, &frame::mutable_open_session) || put(m, f, &frame::mutable_watch_started) ||
         put(m, f, &frame::mutable_watch_batch) || put(m, f, &frame::mutable_query) ||
         put(m, f, &frame::mutable_query_response) || put(m, f, &frame::mutable_snapshot_now) ||
         put(m, f, &frame::mutable_snapshot_meta) || put(m, f, &frame::mutable_snapshot_read) ||
         put(m, f, &frame::mutable_snapshot_chunk) || put(m, f, &frame::mutable_batch) ||
         put(m, f, &frame::mutable_write_response) || put(m, f, &frame::mutable_get_response) ||
         put(m, f, &frame::mutable_batch_response) || put(m, f, &frame::mutable_node_status) ||
         put(m, f, &frame::mutable_join) || put(m, f, &frame::mutable_leave) ||
         put(m, f, &frame::mutable_membership_response) || put(m, f, &frame::mutable_leader_info) ||
         put(m, f, &frame::mutable_transfer_leadership) ||
         put(m, f, &frame::mutable_leadership_event) ||
         put(m, f, &frame::mutable_actor_directory) || put(m, f, &frame::mutable_inspect) ||
         put(m, f, &frame::mutable_inspection) || put(m, f, &frame::mutable_log_lines) ||
         put(m, f, &frame::mutable_group_list) || put(m, f, &frame::mutable_create_group) ||
         put(m, f, &frame::mutable_remove_group) ||
         put_atom<groups_atom>(m, f, &frame::mutable_groups) ||
         put_atom<status_atom>(m, f, &frame::mutable_status) ||
         put_atom<leader_atom>(m, f, &frame::mutable_leader) ||
         put_atom<step_down_atom>(m, f, &frame::mutable_step_down) ||
         put_atom<joined_atom>(m, f, &frame::mutable_joined) ||
         put_atom<directory_atom>(m, f, &frame::mutable_directory);
}

caf::message from_frame(frame& f) {
  switch (f.body_case()) {
  case frame::kRequestVote:
    return take(f.mutable_request_vote());
  case frame::kRequestVoteResponse:
    return take(f.mutable_request_vote_response());
  case frame::kAppendEntries:
    return take(f.mutable_append_entries());
  case frame::kAppendEntriesResponse:
    return take(f.mutable_append_entries_response());
  case frame::kInstallSnapshot:
    return take(f.mutable_install_snapshot());
  case frame::kInstallSnapshotResponse:
    return take(f.mutable_install_snapshot_response());
  case frame::kTimeoutNow:
    return take(f.mutable_timeout_now());
  case frame::kReadIndex:
    return take(f.mutable_read_index());
  case frame::kReadIndexResponse:
    return take(f.mutable_read_index_response());
  case frame::kPut:
    return take(f.mutable_put());
  case frame::kDel:
    return take(f.mutable_del());
  case frame::kCas:
    return take(f.mutable_cas());
  case frame::kGet:
    return take(f.mutable_get());
  case frame::kPropose:
    return take(f.mutable_propose());
  case frame::kOpenSession:
    return take(f.mutable_open_session());
  case frame::kWatch:
    return take(f.mutable_watch());
  case frame::kWatchStarted:
    return take(f.mutable_watch_started());
  case frame::kWatchBatch:
    return take(f.mutable_watch_batch());
  case frame::kQuery:
    return take(f.mutable_query());
  case frame::kQueryResponse:
    return take(f.mutable_query_response());
  case frame::kSnapshotNow:
    return take(f.mutable_snapshot_now());
  case frame::kSnapshotMeta:
    return take(f.mutable_snapshot_meta());
  case frame::kSnapshotRead:
    return take(f.mutable_snapshot_read());
  case frame::kSnapshotChunk:
    return take(f.mutable_snapshot_chunk());
  case frame::kBatch:
    return take(f.mutable_batch());
  case frame::kWriteResponse:
    return take(f.mutable_write_response());
  case frame::kGetResponse:
    return take(f.mutable_get_response());
  case frame::kBatchResponse:
    return take(f.mutable_batch_response());
  case frame::kStatus:
    return caf::make_message(status_atom::value);
  case frame::kNodeStatus:
    return take(f.mutable_node_status());
  case frame::kJoin:
    return take(f.mutable_join());
  case frame::kLeave:
    return take(f.mutable_leave());
  case frame::kMembershipResponse:
    return take(f.mutable_membership_response());
  case frame::kLeader:
    return caf::make_message(leader_atom::value);
  case frame::kWaitLeader:
    return caf::make_message(wait_leader_atom::value, f.wait_leader().term());
  case frame::kLeaderInfo:
    return take(f.mutable_leader_info());
  case frame::kTransferLeadership:
    return take(f.mutable_transfer_leadership());
  case frame::kStepDown:
    return caf::make_message(step_down_atom::value);
  case frame::kStepDownResponse:
    return caf::make_message(f.step_down_response().term());
  case frame::kJoined:
    return caf::make_message(joined_atom::value);
  case frame::kLeadershipEvent:
    return take(f.mutable_leadership_event());
  case frame::kDirectory:
    return caf::make_message(directory_atom::value);
  case frame::kActorDirectory:
    return take(f.mutable_actor_directory());
  case frame::kInspect:
    return take(f.mutable_inspect());
  case frame::kInspection:
    return take(f.mutable_inspection());
  case frame::kRecentLog:
    return caf::make_message(recent_log_atom::value, f.recent_log().max());
  case frame::kLogLines:
    return take(f.mutable_log_lines());
  case frame::kGroups:
    return caf::make_message(groups_atom::value);
  case frame::kGroupList:
    return take(f.mutable_group_list());
  case frame::kCreateGroup:
    return take(f.mutable_create_group());
  case frame::kRemoveGroup:
    return take(f.mutable_remove_group());
  default:
    return caf::message{};
  }
}

void to_frame(const caf::error& e, frame& f) {
  to_pb(e, *f.mutable_error());
}

caf::error error_of(const frame& f) {
  return from_pb(f.error());
}

} // namespace cafraft
