#include <cafraft/actors/batcher.hpp>

#include <algorithm>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include <caf/all.hpp>

#include <cafraft/actors/batch.hpp>
#include <cafraft/actors/guards.hpp>
#include <cafraft/messages/api.hpp>

namespace cafraft {

namespace {

using promises = std::vector<caf::response_promise>;

// The requests waiting for a batch to one node, and its batches under way.
struct target {
  caf::actor node;
  pb::BatchRequest queued;
  promises waiting;                                        // one per queued item
  std::map<uint64_t, std::shared_ptr<promises>> in_flight; // by batch number
};

struct batcher_state {
  batcher_options opts;
  std::map<caf::actor_addr, target> targets;
  uint64_t batches = 0; // numbers the batches
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
void put_into(pb::BatchItem& item, pb::QueryRequest&& r) {
  *item.mutable_query() = std::move(r);
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
    case pb::BatchResult::kQuery:
      waiting[i].deliver(std::move(*r.mutable_query()));
      break;
    case pb::BatchResult::kError:
      waiting[i].deliver(from_pb(r.error()));
      break;
    default:
      waiting[i].deliver(make_error(errc::invalid_request, "a batch result without an answer"));
    }
  }
}

// Takes the batch out of those under way; false when it is no longer (its node's connection
// broke, and its callers have been told).
bool settle(batcher_ptr self, const caf::actor_addr& key, uint64_t batch) {
  auto i = self->state.targets.find(key);
  return i != self->state.targets.end() && i->second.in_flight.erase(batch) > 0;
}

void flush(batcher_ptr self, const caf::actor_addr& key) {
  auto& t = self->state.targets[key];
  while (t.in_flight.size() < self->state.opts.max_in_flight && t.queued.items_size() > 0) {
    pb::BatchRequest batch;
    auto waiting = std::make_shared<promises>();
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
    auto n = ++self->state.batches;
    t.in_flight.emplace(n, waiting);
    self->request(t.node, self->state.opts.timeout, std::move(batch))
        .then(
            [self, key, n, waiting](pb::BatchResponse& resp) {
              if (!settle(self, key, n))
                return;
              answer(*waiting, resp);
              flush(self, key);
            },
            [self, key, n, waiting](caf::error& e) {
              if (!settle(self, key, n))
                return;
              for (auto& p : *waiting)
                p.deliver(e);
              flush(self, key);
            });
  }
}

// The connection to a node broke (or the node is gone): its batches under way will get no
// answer, and what waits for the next batch cannot go out. Both are answered now.
void lose(batcher_ptr self, const caf::actor_addr& key) {
  auto i = self->state.targets.find(key);
  if (i == self->state.targets.end())
    return;
  auto sent =
      make_error(errc::connection_lost, "the connection broke while the request was under way");
  for (auto& [n, waiting] : i->second.in_flight)
    for (auto& p : *waiting)
      p.deliver(sent);
  auto unsent = make_error(errc::unreachable, "the connection broke before the request was sent");
  for (auto& p : i->second.waiting)
    p.deliver(unsent);
  self->demonitor(key);
  self->state.targets.erase(i);
}

template <class Request>
caf::result<caf::message> enqueue(batcher_ptr self, const caf::actor& node, Request& req) {
  if (!node)
    return make_error(errc::invalid_request, "no node to send the request to");
  auto key = node.address();
  auto& t = self->state.targets[key];
  if (!t.node) { // a node new to us, or again after its connection broke
    t.node = node;
    self->monitor(node);                            // a node, or a proxy: down when it goes
    self->send(node, connection_watch_atom::value); // a dialer (actors/peer.hpp): tells us
  }
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
  self->set_down_handler([self](caf::down_msg& m) { lose(self, m.source); });
  return {
      [self](connection_lost_atom, const caf::actor& via) { lose(self, via.address()); },
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
      [self](batch_atom, const caf::actor& node, pb::QueryRequest& req) {
        return enqueue(self, node, req);
      },
  };
}

} // namespace

caf::actor spawn_batcher(caf::actor_system& sys, batcher_options opts) {
  return sys.spawn(batcher_impl, opts);
}

} // namespace cafraft
