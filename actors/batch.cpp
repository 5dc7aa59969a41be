#include <cafraft/actors/batch.hpp>

#include <memory>
#include <string>

#include <caf/all.hpp>

#include <cafraft/messages/api.hpp>

namespace cafraft {

namespace {

// The results gathered so far; the last answer delivers them.
struct gathering {
  pb::BatchResponse response;
  int left = 0;
  caf::response_promise promise;

  void fail(int i, const caf::error& e) {
    to_pb(e, *response.mutable_results(i)->mutable_error());
    done();
  }

  void done() {
    if (--left == 0)
      promise.deliver(std::move(response));
  }
};

template <class Request>
void ask_write(caf::event_based_actor* self, const caf::actor& role, Request&& req,
               const std::shared_ptr<gathering>& g, int i) {
  self->request(role, caf::infinite, std::forward<Request>(req))
      .then(
          [g, i](pb::WriteResponse& w) {
            *g->response.mutable_results(i)->mutable_write() = std::move(w);
            g->done();
          },
          [g, i](caf::error& e) { g->fail(i, e); });
}

} // namespace

caf::result<pb::BatchResponse> answer_batch(caf::event_based_actor* self, const caf::actor& role,
                                            pb::BatchRequest& batch) {
  auto n = batch.items_size();
  if (n > max_batch_items)
    return make_error(errc::invalid_request, "a batch of " + std::to_string(n) +
                                                 " items; at most " +
                                                 std::to_string(max_batch_items));
  if (n == 0)
    return pb::BatchResponse{};
  auto g = std::make_shared<gathering>();
  g->response.mutable_results()->Reserve(n);
  for (int i = 0; i < n; ++i)
    g->response.add_results();
  g->left = n;
  g->promise = self->make_response_promise();
  for (int i = 0; i < n; ++i) {
    auto& item = *batch.mutable_items(i);
    switch (item.op_case()) {
    case pb::BatchItem::kPut:
      ask_write(self, role, std::move(*item.mutable_put()), g, i);
      break;
    case pb::BatchItem::kDel:
      ask_write(self, role, std::move(*item.mutable_del()), g, i);
      break;
    case pb::BatchItem::kCas:
      ask_write(self, role, std::move(*item.mutable_cas()), g, i);
      break;
    case pb::BatchItem::kPropose:
      ask_write(self, role, std::move(*item.mutable_propose()), g, i);
      break;
    case pb::BatchItem::kOpenSession:
      ask_write(self, role, std::move(*item.mutable_open_session()), g, i);
      break;
    case pb::BatchItem::kGet:
      self->request(role, caf::infinite, std::move(*item.mutable_get()))
          .then(
              [g, i](pb::GetResponse& r) {
                *g->response.mutable_results(i)->mutable_get() = std::move(r);
                g->done();
              },
              [g, i](caf::error& e) { g->fail(i, e); });
      break;
    case pb::BatchItem::kQuery:
      self->request(role, caf::infinite, std::move(*item.mutable_query()))
          .then(
              [g, i](pb::QueryResponse& r) {
                *g->response.mutable_results(i)->mutable_query() = std::move(r);
                g->done();
              },
              [g, i](caf::error& e) { g->fail(i, e); });
      break;
    default:
      g->fail(i, make_error(errc::invalid_request, "a batch item without an operation"));
    }
  }
  return g->promise;
}

} // namespace cafraft
