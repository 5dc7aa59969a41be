// The client's side of a client session (docs/sessions.md), shared by cafraft::client and
// remote_client: a write gets the session's next sequence number and is sent again, with the
// same number, after every indefinite failure (timeout, leadership_lost, connection_lost, ...)
// until a definite answer or the deadline; the session table makes it apply once. A session
// is opened on the first write; one that expired is opened again for a write that was never
// sent. A cluster whose feature level is below the sessions' refuses to open one: the client
// then writes without a session, as before (a retry could apply twice, so it is not retried).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

#include <caf/expected.hpp>

#include <cafraft/messages/errors.hpp>
#include <cafraft/messages/raft.pb.h>

namespace cafraft {

struct client_session {
  bool enabled = true; // off: writes carry no session
  uint64_t id = 0;     // 0: none open yet
  uint64_t next = 0;   // the last sequence number given out
  /// Writes this client sent again after an indefinite failure, and of those the ones the
  /// table answered as duplicates (applied by an earlier attempt).
  uint64_t retries = 0;
  uint64_t duplicates = 0;
};

inline bool is_errc(const caf::error& e, errc c) {
  return e.category() == error_category && e.code() == static_cast<uint8_t>(c);
}

/// Runs the write `req` in session `s`. `call(req)` sends it once, with redirects and the
/// waits for a leader, answering before `until`; `open()` opens a session (an
/// OpenSessionRequest the same way).
template <class Req, class Call, class Open>
caf::expected<pb::WriteResponse> write_in_session(client_session& s, Req req, Call&& call,
                                                  Open&& open,
                                                  std::chrono::steady_clock::time_point until) {
  if (!s.enabled)
    return call(req);
  bool indefinite = false; // an earlier attempt may have been applied
  for (int opened = 0;;) {
    if (s.id == 0) {
      auto o = open();
      if (!o) {
        if (is_errc(o.error(), errc::invalid_request)) { // the cluster has no sessions yet
          s.enabled = false;
          return call(req);
        }
        return o.error();
      }
      s.id = o->index();
      s.next = 0;
      ++opened;
    }
    auto seq = ++s.next;
    auto* tag = req.mutable_session();
    tag->set_id(s.id);
    tag->set_sequence(seq);
    tag->set_acked_below(seq); // one write at a time: every earlier answer is here
    auto backoff = std::chrono::milliseconds{20};
    for (;;) {
      auto r = call(req);
      if (r) {
        s.duplicates += r->duplicate();
        return r;
      }
      auto e = r.error();
      if (is_errc(e, errc::session_expired) && !indefinite && opened < 2) {
        s.id = 0; // never applied: a new session, a new number
        break;
      }
      if (!is_indefinite(e) || std::chrono::steady_clock::now() + backoff >= until)
        return e;
      indefinite = true;
      ++s.retries;
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds{500});
    }
  }
}

} // namespace cafraft
