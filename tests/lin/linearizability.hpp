// A linearizability checker for key-value histories: the Wing & Gong search with Lowe's
// memoisation of (linearized set, state), run separately for each key (P-compositionality:
// a history is linearizable iff every key's sub-history is).
//
// The model of one key is a register that may be absent: read -> value or absent, write(v),
// cas(expected, new) -> ok or fail, append(v) (the key's value with v added at its end; an
// absent key counts as "" for append). An operation whose outcome is unknown (a timeout, a
// lost connection) may have taken effect at any time after its invocation, or never: its
// completion is +infinity and its output is not checked.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace cafraft::lin {

enum class op_kind { read, write, cas, append };

/// How an operation ended, as the client saw it.
enum class outcome {
  ok,       // took effect (for a cas: the compare succeeded and the swap took effect)
  fail,     // cas only: the compare failed (it took effect as a read that saw another value)
  rejected, // definitely took no effect (not_leader, a refused request): left out of the search
  unknown,  // may or may not have taken effect (a timeout, a lost connection)
};

/// One operation of a history, invocation and completion on one clock.
struct operation {
  int client = 0;
  std::string key;
  op_kind kind = op_kind::read;
  /// write/append: the value written; cas: the new value.
  std::string value;
  /// cas: the value the key must hold for the swap (nullopt: the key must be absent).
  std::optional<std::string> expected;
  /// read with outcome ok: what it returned (nullopt: absent).
  std::optional<std::string> read_value;
  outcome result = outcome::ok;
  int64_t invoke = 0;
  /// Ignored for unknown outcomes (treated as +infinity).
  int64_t complete = 0;
};

enum class verdict { linearizable, not_linearizable, timed_out };

struct check_result {
  verdict answer = verdict::linearizable;
  /// When not linearizable (or timed out): the first key whose sub-history failed, and a
  /// human-readable account (the operations of that key, and the longest linearizable prefix
  /// found), to print with a failing seed.
  std::string key;
  std::string explanation;
  /// Operations checked, keys, and search states visited over all keys.
  uint64_t operations = 0;
  uint64_t keys = 0;
  uint64_t states = 0;
};

struct check_options {
  /// The value every key holds before the history (nullopt: absent).
  std::optional<std::string> initial;
  /// Wall-clock budget for the whole check; past it the answer is timed_out.
  std::chrono::milliseconds timeout{std::chrono::seconds{60}};
};

/// Checks a complete history. Rejected operations (and a read or write marked fail) took no
/// effect and are left out; a cas marked fail is checked as a compare that failed.
check_result check(const std::vector<operation>& history, const check_options& opts = {});

/// Renders one operation on one line, for explanations and failing seeds.
std::string to_string(const operation& op);

} // namespace cafraft::lin
