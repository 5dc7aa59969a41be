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
// A caller with one request at a time gains nothing: its request goes out alone, through one
// more local hop. Many callers with requests outstanding at once share one message each way per
// batch, which spares each request the cost of a message of its own in CAF's networking
// (docs/performance.md).
#pragma once

#include <chrono>
#include <cstddef>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

namespace cafraft {

struct batcher_options {
  /// Batches one node may have unanswered at once; requests that come meanwhile wait for the
  /// next batch.
  size_t max_in_flight = 1;
  /// How long a batch may go unanswered.
  std::chrono::milliseconds timeout{5000};
};

caf::actor spawn_batcher(caf::actor_system& sys, batcher_options opts = {});

} // namespace cafraft
