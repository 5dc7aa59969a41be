// The batcher: a client-side actor that gathers the requests of many callers in one process
// into pb::BatchRequests, one message to a node for all the requests that came while the
// previous batch to it was under way (the client's side of group commit).
//
//   receives  batch_atom, caf::actor node, pb::PutRequest | pb::DeleteRequest | pb::CasRequest
//             | pb::ProposeRequest | pb::GetRequest | pb::QueryRequest
//             -> what the node would answer the request alone (pb::WriteResponse,
//             pb::GetResponse or pb::QueryResponse), or its error: not_leader with the leader's
//             hint, overloaded, ...
//   A batch that gets no answer within `timeout` fails each of its requests with
//   caf::sec::request_timeout (indefinite, as a timeout always is).
//   When the node goes down, or its dialer (actors/peer.hpp) reports that the connection
//   broke, the batches under way fail at once with errc::connection_lost (indefinite), and the
//   requests not sent yet with errc::unreachable (definite); the next request starts afresh.
//
// With `resolve` set, writes without a session tag go in the batcher's client session
// (docs/sessions.md): each gets the session's next sequence number, and after an indefinite
// failure (a timeout, leadership_lost, connection_lost, ...) the batcher sends it again with the
// same number, following not_leader to the leader `resolve` names and waiting out
// unknown_leader, until a definite answer or `retry_for`: a write applies once. The session is
// opened with the first write, through the node that write went to; a cluster below the
// sessions' feature level refuses it, and the batcher then sends writes as they are.
//
// A caller with one request at a time gains nothing: its request goes out alone, through one
// more local hop. Many callers with requests outstanding at once share one message each way per
// batch, which spares each request the cost of a message of its own in CAF's networking
// (docs/performance.md).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

namespace cafraft {

struct batcher_options {
  /// Batches one node may have unanswered at once; requests that come meanwhile wait for the
  /// next batch.
  size_t max_in_flight = 1;
  /// How long a batch may go unanswered.
  std::chrono::milliseconds timeout{5000};
  /// The node of a leader a not_leader answer names (its id and address; null: unknown).
  /// Set: writes go in a client session and are retried (above).
  std::function<caf::actor(const std::string& id, const std::string& address)> resolve;
  /// How long a write in the session is retried before its last error is the answer.
  std::chrono::milliseconds retry_for{10000};
  /// Nodes a write in the session tries in turn when its node failed without naming a leader
  /// (it went down, or its connection broke).
  std::vector<caf::actor> nodes;
};

/// Options with these two set and the others at their defaults.
inline batcher_options batch_options(size_t max_in_flight, std::chrono::milliseconds timeout) {
  batcher_options o;
  o.max_in_flight = max_in_flight;
  o.timeout = timeout;
  return o;
}

caf::actor spawn_batcher(caf::actor_system& sys, batcher_options opts = {});

} // namespace cafraft
