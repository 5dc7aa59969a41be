// Batched client requests (pb::BatchRequest): the node hands each item to its current role as
// if it had come alone, and answers with every item's result once all are answered.
#pragma once

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/result.hpp>

#include <cafraft/messages/raft.pb.h>

namespace cafraft {

/// The most items one BatchRequest may carry; a larger one is refused with invalid_request.
constexpr int max_batch_items = 4096;

/// Answers `batch` through `role` (the node's current role actor). An empty batch is answered
/// at once; an item without an operation gets invalid_request as its result.
caf::result<pb::BatchResponse> answer_batch(caf::event_based_actor* self, const caf::actor& role,
                                            pb::BatchRequest& batch);

} // namespace cafraft
