// What a node's connections take from the network (docs/protocol.md): bytes, in whatever
// pieces TCP delivers them, through the frame decoder and the handshake of runtime/wire.hpp,
// and every frame after it through the codec of actors/wire_codec.hpp into the CAF message a
// node would be handed.
//
// Input: u8 setup, then steps. Setup bit 0: the side that accepted (else the side that
// connected); bit 1: with TLS, the certificate names "n2"; bit 2: a small frame limit (64
// bytes). A step is a blob of bytes that arrive together.
//
// Checks, besides the sanitizers: a session that faulted never hands on another frame; one
// that hands on frames is established; the Welcome or Error it writes back is one whole frame;
// every frame handed on is within the limit, and a message it decodes to is encoded again to
// the same body.
#include "fuzz_common.hpp"
#include <caf/message.hpp>
#include <cafraft/actors/wire_codec.hpp>
#include <cafraft/runtime/wire.hpp>

using namespace cafraft;
namespace fz = cafraft::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fz::input in{data, size};
  auto setup = in.u8();
  bool accepting = (setup & 1) != 0;
  wire::limits lim;
  if ((setup & 4) != 0)
    lim.max_frame_bytes = 64;
  wire::session s{accepting, wire::identity{"c1", "n1", accepting ? "" : "n2"}, lim};
  if ((setup & 2) != 0)
    s.set_certificate_names({"n2"});
  bool failed = false;
  while (!in.empty()) {
    auto piece = in.blob();
    std::vector<pb::Frame> frames;
    std::vector<char> out;
    auto x = s.feed(piece.data(), piece.size(), frames, out);
    FUZZ_CHECK(!failed || frames.empty(), "a frame after a fault");
    FUZZ_CHECK(frames.empty() || s.established(), "a frame before the handshake");
    if (!out.empty()) {
      FUZZ_CHECK(accepting, "the connecting side answered something");
      wire::frame_decoder d{1 << 20};
      d.feed(out.data(), out.size());
      pb::Frame answer;
      wire::fault e;
      std::string why;
      FUZZ_CHECK(d.next(answer, e, why), "the handshake's answer is not a frame");
      FUZZ_CHECK(answer.has_welcome() || answer.has_error(), "an answer of another kind");
      FUZZ_CHECK(d.buffered() == 0, "more than one frame answered");
    }
    for (auto& f : frames) {
      FUZZ_CHECK(f.ByteSizeLong() <= lim.max_frame_bytes, "a frame over the limit");
      auto body = f.body_case();
      auto msg = from_frame(f);
      if (!msg.empty()) {
        pb::Frame again;
        FUZZ_CHECK(to_frame(msg, again), "a decoded message cannot be encoded");
        FUZZ_CHECK(again.body_case() == body, "a message came back as another body");
      }
    }
    if (x != wire::fault::none)
      failed = true;
  }
  return 0;
}
