#include <cafraft/actors/batcher.hpp>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <utility>
#include <variant>
#include <vector>

#include <caf/all.hpp>

#include <cafraft/actors/batch.hpp>
#include <cafraft/actors/client_session.hpp>
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

/// A write in the batcher's session, until its answer is definite (docs/sessions.md).
struct session_write {
  caf::response_promise rp;
  caf::actor node; // where the next attempt goes
  std::variant<pb::PutRequest, pb::DeleteRequest, pb::CasRequest, pb::ProposeRequest> req;
  caf::actor_clock::time_point deadline;
  bool indefinite = false; // an attempt may have been applied
  size_t next_node = 0;    // in opts.nodes, when the node fails without a hint
  std::chrono::milliseconds backoff{0};
};

struct batch_session {
  bool enabled = true;
  uint64_t id = 0; // 0: not open
  bool opening = false;
  caf::actor_clock::time_point open_deadline;
  uint64_t next = 0;
  std::map<uint64_t, session_write> writes; // by sequence number: those without an answer
  // Writes that wait for the session to open: each starts itself, or fails with the error.
  std::vector<std::pair<std::function<void()>, std::function<void(const caf::error&)>>> waiting;
  uint64_t retries = 0, duplicates = 0;
};

struct batcher_state {
  batcher_options opts;
  std::map<caf::actor_addr, target> targets;
  uint64_t batches = 0; // numbers the batches
  batch_session session;
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
void put_into(pb::BatchItem& item, pb::OpenSessionRequest&& r) {
  *item.mutable_open_session() = std::move(r);
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

// -- the session ------------------------------------------------------------------------------

void attempt(batcher_ptr self, uint64_t seq);
void open_session(batcher_ptr self, const caf::actor& node);

/// The attempt of write `seq` failed with `e`: another, or the error as its answer.
void attempt_failed(batcher_ptr self, uint64_t seq, const caf::error& e) {
  auto& ss = self->state.session;
  auto i = ss.writes.find(seq);
  if (i == ss.writes.end())
    return;
  auto& w = i->second;
  auto& o = self->state.opts;
  std::string id, address;
  if (leader_hint(e, id, address)) { // definite: not taken there; the leader it names
    if (auto n = o.resolve(id, address); n && n != w.node) {
      w.node = n;
      attempt(self, seq);
      return;
    }
  }
  bool again = is_indefinite(e) || is_errc(e, errc::unknown_leader) ||
               is_errc(e, errc::not_leader) || is_errc(e, errc::unreachable) ||
               is_errc(e, errc::overloaded);
  w.backoff = std::min(w.backoff.count() == 0 ? std::chrono::milliseconds{10} : w.backoff * 2,
                       std::chrono::milliseconds{500});
  if (!again || self->clock().now() + w.backoff >= w.deadline) {
    w.rp.deliver(e);
    ss.writes.erase(i);
    return;
  }
  w.indefinite = w.indefinite || is_indefinite(e);
  // A node that went down or that no leader names: the next of the nodes.
  if (!is_errc(e, errc::not_leader) && !is_errc(e, errc::unknown_leader) && !o.nodes.empty())
    w.node = o.nodes[w.next_node++ % o.nodes.size()];
  ++ss.retries;
  self->delayed_send(self, w.backoff, retry_atom::value, seq);
}

void attempt(batcher_ptr self, uint64_t seq) {
  auto& ss = self->state.session;
  auto i = ss.writes.find(seq);
  if (i == ss.writes.end())
    return;
  auto acked = ss.writes.begin()->first; // every answer below the lowest outstanding is in
  std::visit(
      [&](auto r) {
        auto* tag = r.mutable_session();
        tag->set_id(ss.id);
        tag->set_sequence(seq);
        tag->set_acked_below(acked);
        self->request(caf::actor_cast<caf::actor>(self), caf::infinite, batch_atom::value,
                      i->second.node, std::move(r))
            .then(
                [self, seq](pb::WriteResponse& resp) {
                  auto& s = self->state.session;
                  auto j = s.writes.find(seq);
                  if (j == s.writes.end())
                    return;
                  s.duplicates += resp.duplicate();
                  j->second.rp.deliver(std::move(resp));
                  s.writes.erase(j);
                },
                [self, seq](caf::error& e) {
                  auto& s = self->state.session;
                  auto j = s.writes.find(seq);
                  if (j != s.writes.end() && is_errc(e, errc::session_expired) &&
                      !j->second.indefinite) {
                    // Never applied: the write starts again in a new session.
                    auto w = std::move(j->second);
                    s.writes.erase(j);
                    if (!s.opening)
                      s.id = 0;
                    auto rp = w.rp;
                    auto node = w.node;
                    s.waiting.emplace_back(
                        [self, w]() mutable {
                          auto& s2 = self->state.session;
                          auto n = ++s2.next;
                          s2.writes.emplace(n, std::move(w));
                          attempt(self, n);
                        },
                        [rp](const caf::error& err) mutable { rp.deliver(err); });
                    open_session(self, node);
                    return;
                  }
                  attempt_failed(self, seq, e);
                });
      },
      i->second.req);
}

/// Opens the batcher's session through `node` (following redirects), then starts the writes
/// that wait for it. Refused for want of the feature level: the writes go as they are.
void open_session(batcher_ptr self, const caf::actor& node) {
  auto& ss = self->state.session;
  if (ss.opening)
    return;
  if (!ss.opening && ss.waiting.empty())
    return;
  ss.opening = true;
  if (ss.open_deadline < self->clock().now())
    ss.open_deadline = self->clock().now() + self->state.opts.retry_for;
  auto finish = [self](const caf::error* e) {
    auto& s = self->state.session;
    s.opening = false;
    s.open_deadline = {};
    auto waiting = std::move(s.waiting);
    s.waiting.clear();
    for (auto& [start, fail] : waiting)
      if (e)
        fail(*e);
      else
        start();
  };
  self->request(caf::actor_cast<caf::actor>(self), caf::infinite, batch_atom::value, node,
                pb::OpenSessionRequest{})
      .then(
          [self, finish](pb::WriteResponse& w) {
            auto& s = self->state.session;
            s.id = w.index();
            s.next = 0;
            finish(nullptr);
          },
          [self, node, finish](caf::error& e) {
            auto& s = self->state.session;
            auto& o = self->state.opts;
            if (is_errc(e, errc::invalid_request)) { // no sessions in this cluster yet
              s.enabled = false;
              finish(nullptr);
              return;
            }
            s.opening = false;
            std::string id, address;
            caf::actor next = node;
            if (leader_hint(e, id, address))
              if (auto n = o.resolve(id, address))
                next = n;
            if (self->clock().now() >= s.open_deadline) {
              finish(&e);
              return;
            }
            self->delayed_send(self, std::chrono::milliseconds{20}, retry_atom::value, uint64_t{0},
                               next);
          });
}

/// A write from a caller: in the session when the batcher keeps one, else as it is.
template <class Request>
caf::result<caf::message> write(batcher_ptr self, const caf::actor& node, Request& req) {
  auto& ss = self->state.session;
  if (!self->state.opts.resolve || !ss.enabled || req.has_session() || !node)
    return enqueue(self, node, req);
  auto rp = self->make_response_promise();
  auto start = [self, node, rp, r = std::move(req)]() mutable {
    auto& s = self->state.session;
    if (!s.enabled) { // refused: as it is
      self->request(caf::actor_cast<caf::actor>(self), caf::infinite, batch_atom::value, node,
                    std::move(r))
          .then([rp](pb::WriteResponse& w) mutable { rp.deliver(std::move(w)); },
                [rp](caf::error& e) mutable { rp.deliver(std::move(e)); });
      return;
    }
    auto seq = ++s.next;
    session_write w;
    w.rp = rp;
    w.node = node;
    w.req = std::move(r);
    w.deadline = self->clock().now() + self->state.opts.retry_for;
    s.writes.emplace(seq, std::move(w));
    attempt(self, seq);
  };
  if (ss.id != 0) {
    start();
  } else {
    ss.waiting.emplace_back(start, [rp](const caf::error& e) mutable { rp.deliver(e); });
    open_session(self, node);
  }
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
        return write(self, node, req);
      },
      [self](batch_atom, const caf::actor& node, pb::DeleteRequest& req) {
        return write(self, node, req);
      },
      [self](batch_atom, const caf::actor& node, pb::CasRequest& req) {
        return write(self, node, req);
      },
      [self](batch_atom, const caf::actor& node, pb::ProposeRequest& req) {
        return write(self, node, req);
      },
      [self](batch_atom, const caf::actor& node, pb::OpenSessionRequest& req) {
        return enqueue(self, node, req);
      },
      [self](retry_atom, uint64_t seq) { attempt(self, seq); },
      [self](retry_atom, uint64_t, const caf::actor& node) { open_session(self, node); },
      [self](status_atom) {
        auto& s = self->state.session;
        return caf::make_message(s.id, s.retries, s.duplicates);
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
