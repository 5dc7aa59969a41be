// A blocking request for threads outside actors (tools, the blocking clients) that hears of a
// broken connection at once: CAF 0.17 never answers a request whose connection broke, so a
// scoped_actor would wait out the whole timeout.
#pragma once

#include <chrono>
#include <future>
#include <memory>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>

#include <cafraft/messages/api.hpp>

namespace cafraft {

/// Sends `req` to `dest` and waits for the answer, at most `timeout`. Fails with
/// errc::connection_lost (indefinite) as soon as `dest` goes down or, when `dest` is a dialer
/// (actors/peer.hpp), as soon as the dialer's connection breaks.
template <class Resp, class Req>
caf::expected<Resp> ask_watched(caf::actor_system& sys, const caf::actor& dest, const Req& req,
                                caf::timespan timeout) {
  auto out = std::make_shared<std::promise<caf::expected<Resp>>>();
  auto answer = out->get_future();
  sys.spawn([dest, req, timeout, out](caf::event_based_actor* self) -> caf::behavior {
    auto done = std::make_shared<bool>(false);
    auto finish = [self, out, done](caf::expected<Resp> x) {
      if (*done)
        return;
      *done = true;
      out->set_value(std::move(x));
      self->quit();
    };
    auto lost = [finish] {
      finish(make_error(errc::connection_lost,
                        "the connection broke while the request was under way"));
    };
    self->set_down_handler([lost](caf::down_msg&) { lost(); });
    self->monitor(dest);
    self->send(dest, connection_watch_atom::value); // heard by dialers only
    self->request(dest, timeout, req)
        .then([finish](Resp& r) { finish(std::move(r)); },
              [finish](caf::error& e) { finish(std::move(e)); });
    return {[lost, dest](connection_lost_atom, const caf::actor& via) {
      if (via == dest)
        lost();
    }};
  });
  return answer.get();
}

} // namespace cafraft
