#include "actors/batcher.hpp"

#include <algorithm>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include <caf/all.hpp>

#include "actors/batch.hpp"
#include "actors/guards.hpp"
#include "messages/api.hpp"

namespace cafraft {

namespace {

// The requests waiting for a batch to one node, and how many of its batches are unanswered.
struct target {
  caf::actor node;
  pb::BatchRequest queued;
  std::vector<caf::response_promise> waiting; // one per queued item
  size_t in_flight = 0;
};

struct batcher_state {
  batcher_options opts;
  std::map<caf::actor_addr, target> targets;
  static inline const char* name = "cafraft.batcher";
};

using batcher_ptr = caf::stateful_actor<batcher_state>*;

void put_into(pb::BatchItem& item, pb::PutRequest&& r) {
  *item.mutable_put() = std::move(r);
}
void put_into(pb::BatchItem& item, pb::DeleteRequest&& r) {
  *item.mutable_del() = std::move(r);
}
void put_into(pb::BatchItem& item, pb::CasRequest&& r) {
  *item.mutable_cas() = std::move(r);
}
void put_into(pb::BatchItem& item, pb::ProposeRequest&& r) {
  *item.mutable_propose() = std::move(r);
}
void put_into(pb::BatchItem& item, pb::GetRequest&& r) {
  *item.mutable_get() = std::move(r);
}

void answer(std::vector<caf::response_promise>& waiting, pb::BatchResponse& resp) {
  if (static_cast<size_t>(resp.results_size()) != waiting.size()) {
    auto e = make_error(errc::invalid_request,
                        "a batch answer of " + std::to_string(resp.results_size()) +
                            " results for " + std::to_string(waiting.size()) + " requests");
    for (auto& p : waiting)
      p.deliver(e);
    return;
  }
  for (size_t i = 0; i < waiting.size(); ++i) {
    auto& r = *resp.mutable_results(static_cast<int>(i));
    switch (r.result_case()) {
    case pb::BatchResult::kWrite:
      waiting[i].deliver(std::move(*r.mutable_write()));
      break;
    case pb::BatchResult::kGet:
      waiting[i].deliver(std::move(*r.mutable_get()));
      break;
    case pb::BatchResult::kError:
      waiting[i].deliver(from_pb(r.error()));
      break;
    default:
      waiting[i].deliver(make_error(errc::invalid_request, "a batch result without an answer"));
    }
  }
}

void flush(batcher_ptr self, const caf::actor_addr& key) {
  auto& t = self->state.targets[key];
  while (t.in_flight < self->state.opts.max_in_flight && t.queued.items_size() > 0) {
    pb::BatchRequest batch;
    auto waiting = std::make_shared<std::vector<caf::response_promise>>();
    if (t.queued.items_size() <= max_batch_items) {
      batch.Swap(&t.queued);
      waiting->swap(t.waiting);
    } else { // the oldest max_batch_items go first
      auto& items = *t.queued.mutable_items();
      for (int i = 0; i < max_batch_items; ++i)
        *batch.add_items() = std::move(items[i]);
      items.DeleteSubrange(0, max_batch_items);
      waiting->assign(std::make_move_iterator(t.waiting.begin()),
                      std::make_move_iterator(t.waiting.begin() + max_batch_items));
      t.waiting.erase(t.waiting.begin(), t.waiting.begin() + max_batch_items);
    }
    ++t.in_flight;
    auto done = [self, key] {
      auto i = self->state.targets.find(key);
      if (i == self->state.targets.end())
        return;
      --i->second.in_flight;
      flush(self, key);
    };
    self->request(t.node, self->state.opts.timeout, std::move(batch))
        .then(
            [waiting, done](pb::BatchResponse& resp) {
              answer(*waiting, resp);
              done();
            },
            [waiting, done](caf::error& e) {
              for (auto& p : *waiting)
                p.deliver(e);
              done();
            });
  }
}

template <class Request>
caf::result<caf::message> enqueue(batcher_ptr self, const caf::actor& node, Request& req) {
  if (!node)
    return make_error(errc::invalid_request, "no node to send the request to");
  auto key = node.address();
  auto& t = self->state.targets[key];
  t.node = node;
  put_into(*t.queued.add_items(), std::move(req));
  t.waiting.push_back(self->make_response_promise());
  auto rp = t.waiting.back();
  flush(self, key);
  return rp;
}

caf::behavior batcher_impl(batcher_ptr self, batcher_options opts) {
  self->state.opts = opts;
  self->state.opts.max_in_flight = std::max<size_t>(opts.max_in_flight, 1);
  install_guards(self); // stray input never stops it
  return {
      [self](batch_atom, const caf::actor& node, pb::PutRequest& req) {
        return enqueue(self, node, req);
      },
      [self](batch_atom, const caf::actor& node, pb::DeleteRequest& req) {
        return enqueue(self, node, req);
      },
      [self](batch_atom, const caf::actor& node, pb::CasRequest& req) {
        return enqueue(self, node, req);
      },
      [self](batch_atom, const caf::actor& node, pb::ProposeRequest& req) {
        return enqueue(self, node, req);
      },
      [self](batch_atom, const caf::actor& node, pb::GetRequest& req) {
        return enqueue(self, node, req);
      },
  };
}

} // namespace

caf::actor spawn_batcher(caf::actor_system& sys, batcher_options opts) {
  return sys.spawn(batcher_impl, opts);
}

} // namespace cafraft
