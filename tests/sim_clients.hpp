// Simulated clients for the deterministic cluster tests: a few sequential clients issue
// linearizable reads, writes and compare-and-swaps against any running node, concurrently with
// each other and with every fault, and record what they saw (invocation, completion, outcome)
// as a history for the linearizability checker (tests/lin).
//
// Times are a logical clock shared by all clients: it ticks once at every invocation and every
// completion, in the order the test scheduler ran them, so "A completed before B was invoked"
// in the history means exactly that in the run. An invocation is recorded when the request is
// handed to the scheduler (before any node can see it) and a completion when the answer is
// handled (after the node decided), so every operation's interval covers its real one.
//
// Outcomes: an answer is ok (a cas whose compare failed is fail); a cafraft error that
// is_indefinite() calls definite (not_leader, unknown_leader, ...) is rejected, left out of the
// check; any other error (a timeout, leadership_lost, a node that died under the request) is
// unknown: it may have taken effect, at any time after its invocation. A client retries an
// unknown write or cas as a new operation (same command) half of the time, as a real client
// would. Failed reads are left out: a read changes nothing.
//
// With sessions (use_sessions()), each client opens a client session (docs/sessions.md) and
// sends an unknown write or cas again with the same sequence number, up to 4 times, as
// cafraft::client does: one operation in the history, from its first invocation to the answer
// of its last attempt. The session table makes it apply once, which the checker verifies.
// With read policies (use_read_policies()), a third of the reads are follower reads at any
// node and a third lease reads: they must be linearizable too.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "harness.hpp"
#include "tests/lin/linearizability.hpp"

namespace cafraft::test {

class sim_clients {
public:
  /// `clients` sequential clients over keys "k0".."k<keys-1>".
  sim_clients(caf::actor_system& sys, uint64_t seed, size_t clients, size_t keys);

  /// Writes and swaps go in client sessions, retried with their sequence number.
  void use_sessions(bool on) { sessions_ = on; }
  /// A third of the reads are follower reads (READ_FOLLOWER) at any node, a third lease reads
  /// (READ_LEASE), checked like the others.
  void use_read_policies(bool on) { read_policies_ = on; }
  uint64_t follower_reads() const;
  uint64_t lease_reads() const;
  /// A sixth of the reads, with read policies: stale reads at any node with the index of the
  /// client's last acknowledged write as min_index. Left out of the history; each must come
  /// from a state that applied that index, or it is a violation.
  uint64_t stale_reads() const;
  const std::vector<std::string>& violations() const;
  /// Attempts sent again in a session, and answers the session table gave (duplicates).
  uint64_t session_retries() const;
  uint64_t session_duplicates() const;

  /// Once per simulation step: each idle client starts an operation with probability `rate`,
  /// against a running node of `c` (the leader it was last told of, or any node).
  void step(cluster& c, double rate);
  /// Every client reads every key once more through `leader` (linearizable), after the faults
  /// healed, and waits for the answers: the history ends with what every key holds.
  void final_reads(cluster& c, driver& d, const std::string& leader);

  /// True when no client waits for an answer.
  bool idle() const;
  /// The history so far (operations still waiting count as unknown).
  std::vector<lin::operation> history() const;
  /// Writes and swaps the cluster acknowledged (ok).
  uint64_t acknowledged() const;
  /// Operations by outcome, over the whole history.
  uint64_t count(lin::outcome o) const;
  /// Checks the history; a failure is described (seed replay aside) in the returned text,
  /// empty when the history is linearizable.
  std::string check() const;

private:
  struct shared;
  /// Starts the client's next operation, against `to` when given.
  void start(cluster& c, size_t client, const std::string& to = {});
  std::shared_ptr<shared> st_;
  caf::actor_system& sys_;
  std::mt19937_64 rng_;
  size_t keys_;
  bool sessions_ = false;
  bool read_policies_ = false;
};

} // namespace cafraft::test
