#include "bench/client.hpp"

#include <random>
#include <type_traits>

#include <caf/all.hpp>

#include <cafraft/messages/api.hpp>

namespace cafraft::bench {

namespace {

namespace pb = cafraft::pb;
using namespace std::chrono_literals;

// The code of an error, as the report counts it: "connection_lost", "request_timeout", ...
std::string error_kind(const caf::error& e) {
  if (e.category() == cafraft::error_category)
    return cafraft::to_string(static_cast<cafraft::errc>(e.code()));
  if (e.category() == caf::atom("system"))
    return caf::to_string(static_cast<caf::sec>(e.code()));
  return "other";
}

struct client_state {
  std::shared_ptr<run_shared> run;
  std::shared_ptr<client_result> result;
  size_t next = 0; // round robin over run->addresses
  caf::actor target;
  std::mt19937_64 rng;
  int inflight = 0;
  // The requests not answered yet, by number, with when each was sent. A request carries no
  // timeout of its own (in CAF 0.17 each one is two hand-offs to the clock thread, which cost
  // this tool a tenth of the machine at 1000 clients); sweep() gives up on the late ones.
  uint64_t next_request = 0;
  struct pending {
    int64_t sent;
    caf::actor_addr via; // the dialer it went through (or the batcher)
  };
  std::map<uint64_t, pending> outstanding;
  bool sweeping = false;
  caf::response_promise finished;
  static inline const char* name = "bench.client";
};

using client_ptr = caf::stateful_actor<client_state>*;

void issue(client_ptr self);

// Counts a request that ended (`error` empty when it succeeded) and issues the next one.
void completed(client_ptr self, int64_t sent, size_t bytes, const caf::error& error = {}) {
  bool ok = !error;
  auto& st = self->state;
  auto done = now_ns();
  auto& run = *st.run;
  if (sent >= run.measure_from_ns && done <= run.stop_at_ns.load(std::memory_order_relaxed)) {
    if (ok) {
      st.result->latency.record(static_cast<uint64_t>(done - sent));
      ++st.result->ops;
      st.result->bytes += bytes;
      run.ops.fetch_add(1, std::memory_order_relaxed);
    } else {
      ++st.result->errors;
      ++st.result->error_kinds[error_kind(error)];
      run.errors.fetch_add(1, std::memory_order_relaxed);
    }
  }
  --st.inflight;
  if (done < run.stop_at_ns.load(std::memory_order_relaxed)) {
    if (ok)
      issue(self);
    else // no leader yet, or a timeout: try again a little later, perhaps elsewhere
      self->delayed_send(self, 5ms, issue_atom::value);
    ++st.inflight;
    return;
  }
  if (st.inflight == 0 && st.finished.pending())
    st.finished.deliver(true);
}

void failed(client_ptr self, const caf::error& e) {
  auto& st = self->state;
  std::string id, address;
  auto& run = *st.run;
  if (cafraft::leader_hint(e, id, address) && run.by_address.count(address) > 0) {
    st.target = run.by_address[address];
    return;
  }
  st.next = (st.next + 1) % run.addresses.size();
  st.target = run.by_address[run.addresses[st.next]];
}

// Answers that come after sweep() gave up on their request are dropped.
template <class Response, class Request>
void await(client_ptr self, Request request, int64_t sent, size_t bytes) {
  auto& st = self->state;
  auto n = st.next_request++;
  auto& batcher = st.run->batcher;
  st.outstanding.emplace(n, client_state::pending{sent, (batcher ? batcher : st.target).address()});
  auto msg = batcher ? caf::make_message(cafraft::batch_atom::value, st.target, std::move(request))
                     : caf::make_message(std::move(request));
  self->request(batcher ? batcher : st.target, caf::infinite, std::move(msg))
      .then(
          [self, n, sent, bytes](const Response& r) {
            if (self->state.outstanding.erase(n) == 0)
              return;
            size_t got = bytes;
            if constexpr (std::is_same_v<Response, pb::GetResponse>)
              got += r.value().size();
            completed(self, sent, got);
          },
          [self, n, sent](caf::error& e) {
            if (self->state.outstanding.erase(n) == 0)
              return;
            failed(self, e);
            completed(self, sent, 0, e);
          });
}

// Fails with `e` every outstanding request for which `pred(pending)` holds; their answers, if
// any come later, are dropped.
template <class Pred> void fail_outstanding(client_ptr self, Pred pred, const caf::error& e) {
  auto& st = self->state;
  std::vector<int64_t> gone;
  for (auto i = st.outstanding.begin(); i != st.outstanding.end();) {
    if (!pred(i->second)) {
      ++i;
      continue;
    }
    gone.push_back(i->second.sent);
    i = st.outstanding.erase(i);
  }
  for (auto sent : gone) {
    failed(self, e);
    completed(self, sent, 0, e);
  }
}

// A dialer's connection broke: the requests that went through it fail now, as the batcher
// fails its own (actors/batcher.hpp), instead of at the timeout.
void lost(client_ptr self, const caf::actor& via) {
  fail_outstanding(
      self, [addr = via.address()](const client_state::pending& p) { return p.via == addr; },
      make_error(cafraft::errc::connection_lost));
}

// Every tenth of the timeout: requests older than the timeout fail, as a timeout would.
void sweep(client_ptr self) {
  auto& st = self->state;
  auto deadline = now_ns() - std::chrono::nanoseconds{st.run->timeout}.count();
  fail_outstanding(
      self, [deadline](const client_state::pending& p) { return p.sent <= deadline; },
      make_error(caf::sec::request_timeout));
  st.sweeping = !st.outstanding.empty() || st.inflight > 0;
  if (st.sweeping)
    self->delayed_send(self, std::max(st.run->timeout / 10, std::chrono::milliseconds{1}),
                       sweep_atom::value);
}

void issue(client_ptr self) {
  auto& st = self->state;
  auto& run = *st.run;
  auto key = "key-" + std::to_string(st.rng() % static_cast<uint64_t>(run.keys));
  bool write = run.mix == run_shared::puts || (run.mix == run_shared::mixed && (st.rng() & 1));
  auto sent = now_ns();
  auto bytes = key.size() + (write ? run.value.size() : 0);
  if (write) {
    pb::PutRequest req;
    req.set_key(std::move(key));
    req.set_value(run.value);
    await<pb::WriteResponse>(self, std::move(req), sent, bytes);
  } else {
    pb::GetRequest req;
    req.set_key(std::move(key));
    req.set_policy(run.read);
    await<pb::GetResponse>(self, std::move(req), sent, bytes);
  }
  if (!st.sweeping) {
    st.sweeping = true;
    self->delayed_send(self, std::max(run.timeout / 10, std::chrono::milliseconds{1}),
                       sweep_atom::value);
  }
}

caf::behavior client_impl(client_ptr self, std::shared_ptr<run_shared> run,
                          std::shared_ptr<client_result> result, size_t index) {
  auto& st = self->state;
  st.run = std::move(run);
  st.result = std::move(result);
  st.rng.seed(index * 7919 + 1);
  st.next = index % st.run->addresses.size();
  st.target = st.run->by_address[st.run->addresses[st.next]];
  return {
      [self](start_atom) {
        auto& s = self->state;
        if (!s.run->batcher) // the batcher watches the dialers itself
          for (auto& [address, dialer] : s.run->by_address)
            self->send(dialer, cafraft::connection_watch_atom::value);
        for (int i = 0; i < s.run->inflight; ++i) {
          ++s.inflight;
          issue(self);
        }
      },
      [self](issue_atom) {
        auto& s = self->state;
        if (now_ns() < s.run->stop_at_ns.load(std::memory_order_relaxed)) {
          issue(self);
          return;
        }
        if (--s.inflight == 0 && s.finished.pending())
          s.finished.deliver(true);
      },
      [self](sweep_atom) { sweep(self); },
      [self](cafraft::connection_lost_atom, const caf::actor& via) { lost(self, via); },
      [self](finish_atom) {
        auto& s = self->state;
        s.finished = self->make_response_promise();
        if (s.inflight == 0)
          s.finished.deliver(true);
        return s.finished;
      },
  };
}

} // namespace

caf::actor spawn_client(caf::actor_system& sys, std::shared_ptr<run_shared> run,
                        std::shared_ptr<client_result> result, size_t index) {
  return sys.spawn(client_impl, std::move(run), std::move(result), index);
}

} // namespace cafraft::bench
