// A linearizability checker for key-value histories: the Wing & Gong search with Lowe's
// memoisation of (linearized set, state), run separately for each key (P-compositionality:
// a history is linearizable iff every key's sub-history is).
//
// The model of one key is a register that may be absent: read -> value or absent, write(v),
// cas(expected, new) -> ok or fail, append(v) (the key's value with v added at its end; an
// absent key counts as "" for append). An operation whose outcome is unknown (a timeout, a
// lost connection) may have taken effect at any time after its invocation, or never: its
// completion is +infinity and its output is not checked.
//
// Time: invoke and complete are points on one clock, and an operation's interval is closed.
// Two operations are ordered in real time only if one completes strictly before the other is
// invoked: an operation invoked at the very time another completes overlaps it (the lenient
// reading: equal timestamps say nothing about the order). A completion earlier than the
// invocation is read as equal to it.
//
// Saved histories (for cafraft-lincheck and failing seeds) are text, one operation a line, made
// by to_line and read by from_line / read_history. The nine fields, separated by one tab, in the
// order of `operation`:
//
//   client  key  kind  value  expected  read_value  result  invoke  complete
//
//   client            a decimal int
//   key, value        text, escaped: \\ for a backslash, \t tab, \n newline, \r carriage return
//   kind              read | write | cas | append
//   expected,
//   read_value        text escaped as above, or exactly \N for nullopt (absent)
//   result            ok | fail | rejected | unknown
//   invoke, complete  decimal int64 on one clock; complete may be - when result is unknown
//
// Fields a kind does not use are written anyway (so that a line reads back as the same
// operation) and ignored by the checker. In a file, blank lines and lines starting with '#' are
// comments. Example, with each tab shown as " | " (a write of "a b", a read that saw it, then
// a cas that failed):
//
//   3 | k1 | write | a b | \N | \N | ok | 10 | 14
//   4 | k1 | read |  | \N | a b | ok | 15 | 16
//   3 | k1 | cas | c | x | \N | fail | 17 | 20
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iosfwd>
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
  /// Memory budget of one key's search cache (approximate: checked every few thousand steps,
  /// and a growth step may pass it). A search that outgrows it gives up, and if no other key
  /// is found not linearizable the answer is timed_out, with the reason in the explanation.
  std::size_t max_cache_bytes = std::size_t{1} << 30;
};

/// Checks a complete history. Rejected operations (and a read, write or append marked fail)
/// took no effect and are left out; a cas marked fail is checked as a compare that failed.
///
/// Keys are checked one at a time, those with fewer operations first (then by name), so that
/// under a tight budget the small keys are decided; `key` names the first key found not
/// linearizable, or else the first that timed out. `operations` counts the operations that
/// were not left out, `keys` their keys, `states` the distinct (linearized set, value) pairs
/// the searches reached. Reentrant: calls on different threads share nothing.
check_result check(const std::vector<operation>& history, const check_options& opts = {});

/// Renders one operation on one line, for explanations and failing seeds, e.g.
/// `[10, 14] c3 write "k1" "a b" -> ok` or `[15, inf) c4 read "k1" -> unknown`.
std::string to_string(const operation& op);

/// The names used by to_string and by the line format ("read", "ok", "not linearizable").
std::string to_string(op_kind kind);
std::string to_string(outcome result);
std::string to_string(verdict answer);

/// One operation as one line of the saved-history format above (no line break at the end).
std::string to_line(const operation& op);

/// Parses one line of the saved-history format (without its line break). On a malformed line
/// returns nullopt and says why in `error`; never throws on bad input.
std::optional<operation> from_line(const std::string& line, std::string& error);

/// Writes a header comment and one line per operation.
void write_history(std::ostream& out, const std::vector<operation>& history);

/// Reads a whole saved history, skipping blank and '#' lines (and a '\r' before a line
/// break). On the first malformed line returns nullopt, and `error` names the line number.
std::optional<std::vector<operation>> read_history(std::istream& in, std::string& error);

} // namespace cafraft::lin
