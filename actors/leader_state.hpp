// The leader's state and the functions its parts share (actors/leader.cpp: replication,
// commit, reads and the role's behaviour; actors/leader_membership.cpp: membership changes and
// leadership transfer). Internal to the leader.
#pragma once

#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "actors/role_common.hpp"
#include "runtime/replication.hpp"

namespace cafraft::leader_detail {

using send_mode = replication::send_mode;

struct pending_read {
  uint64_t round;      // ReadIndex round that must be confirmed by a majority
  uint64_t read_index; // commit index when the read arrived
  std::string key;
  caf::response_promise rp;
};

// The one membership change the leader runs (the change_request actor sends one at a time).
struct pending_change {
  std::optional<pb::JoinRequest> join; // else a leave
  pb::LeaveRequest leave;
  caf::response_promise rp;
  uint64_t index = 0; // its configuration entry once appended; 0 while it waits for its turn
};

// A leadership transfer under way (thesis §3.10).
struct pending_transfer {
  std::string target;
  caf::response_promise rp;
  bool timeout_now_sent = false;
};

struct leader_state : role_base {
  std::unique_ptr<replication> repl;
  uint64_t noop_index = 0; // first entry of this term; reads wait until it is committed
  uint64_t flushed = 0;    // highest index handed to storage
  // When each follower's last answer of this term came (inspection: last contact).
  std::map<std::string, caf::actor_clock::time_point> last_heard;
  bool flush_scheduled = false;
  bool broadcast_due = false; // the next flush sends to every peer (reads, first heartbeat)
  uint64_t quorum_gen = 0;    // generation of the check-quorum timer
  std::map<uint64_t, caf::response_promise> pending_writes;
  std::deque<pending_read> pending_reads;
  std::optional<pending_change> change;
  std::optional<pending_transfer> transfer;
  uint64_t transfer_gen = 0;
  bool leaving = false; // removed itself: steps down once the committed writes are answered
  static inline const char* name = "cafraft.leader";
};

using leader_ptr = inspected<leader_state>*;
using guard = step_guard<inspected<leader_state>>;
constexpr auto kind = role_kind::leader;

// actors/leader.cpp
/// Batches everything that arrived before it into one flush.
void schedule_flush(leader_ptr self);
void send_appends(leader_ptr self, const std::string& peer, send_mode mode);
/// Hands the entries appended since the last flush to storage.
void persist_appended(leader_ptr self);
/// Answers every pending request with `why`.
void fail_pending(leader_ptr self, const caf::error& why);

// actors/leader_membership.cpp
/// After the commit index moved: finishes the change it committed, steps down when the leader
/// removed itself, runs the next change and promotes learners that caught up.
void on_config_committed(leader_ptr self);
/// Takes a join or leave (one at a time) and runs it when its turn comes.
caf::response_promise request_change(leader_ptr self, pending_change c);
/// Runs the waiting change when its turn has come.
void try_change(leader_ptr self);
/// A learner whose log has caught up becomes a voter.
void maybe_promote(leader_ptr self);
/// The most up-to-date other voter: the one a removed or transferring leader hands over to.
std::string best_successor(leader_ptr self);
void send_timeout_now(leader_ptr self, const std::string& target);
/// Sends TimeoutNow once the transfer's target has every entry.
void check_transfer(leader_ptr self);

} // namespace cafraft::leader_detail
