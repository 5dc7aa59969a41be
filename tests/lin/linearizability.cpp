// The checker: partition by key, then for each key the Wing & Gong search over a linked list
// of call and return events, with Lowe's cache of the configurations already explored.
//
// The search of one key, in short. The events (one call per operation, one return per
// operation with a known completion) sit in a doubly linked list in time order. Walking the
// list from its head, a call whose operation the model accepts in the current value is
// "lifted": its call and return leave the list, the operation joins the linearized set, and
// the walk restarts at the head. Reaching a return means its operation should have been
// linearized already: the last lift is undone (put back in the list) and the walk goes on
// after it. The history is linearizable when every operation with a known completion is
// linearized; it is not when a return is reached with nothing left to undo.
//
// Lowe's cache: the rest of the search from a point depends only on the set of operations
// linearized and the register's value there (the list is then the history minus that set), so
// a (set, value) pair reached a second time, by another order, cannot succeed where the first
// visit failed, and the lift that leads to it is skipped.
#include "tests/lin/linearizability.hpp"

#include <algorithm>
#include <sstream>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace cafraft::lin {
namespace {

using clock_type = std::chrono::steady_clock;

/// The search looks at the clock and the cache size once every this many steps.
constexpr uint64_t budget_check_interval = 1024;

/// Explanations list at most this many operations of the failing key.
constexpr std::size_t max_listed_operations = 2000;

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/// `s` in double quotes, with backslash escapes for quotes, backslashes and control bytes, so
/// that any value prints on one line.
std::string quoted(std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out = "\"";
  for (const char c : s) {
    const auto byte = static_cast<unsigned char>(c);
    switch (c) {
    case '"':
      out += "\\\"";
      break;
    case '\\':
      out += "\\\\";
      break;
    case '\n':
      out += "\\n";
      break;
    case '\t':
      out += "\\t";
      break;
    case '\r':
      out += "\\r";
      break;
    default:
      if (byte < 0x20 || byte == 0x7f) {
        out += "\\x";
        out += hex[byte >> 4];
        out += hex[byte & 0xf];
      } else {
        out += c;
      }
    }
  }
  out += '"';
  return out;
}

std::string quote(const std::optional<std::string>& v) {
  return v ? quoted(*v) : "absent";
}

// ---------------------------------------------------------------------------------------------
// Values. The search compares register values often, so every value of a key is interned once
// and the model works on small integer ids; id 0 is "absent".

constexpr uint32_t absent_id = 0;

class value_table {
public:
  value_table() { strings_.push_back(nullptr); }

  uint32_t intern(const std::string& s) {
    auto [it, inserted] = ids_.try_emplace(s, static_cast<uint32_t>(strings_.size()));
    if (inserted)
      strings_.push_back(&it->first); // node-based map: the key's address never changes
    return it->second;
  }

  uint32_t intern(const std::optional<std::string>& v) { return v ? intern(*v) : absent_id; }

  std::optional<std::string> value(uint32_t id) const {
    if (id == absent_id)
      return std::nullopt;
    return *strings_[id];
  }

  /// The value after appending `suffix` to `current` (absent counts as ""), memoised: the same
  /// append is tried from the same value many times during a search.
  uint32_t append(uint32_t current, uint32_t suffix) {
    const uint64_t memo_key = (uint64_t{current} << 32) | suffix;
    if (auto it = appends_.find(memo_key); it != appends_.end())
      return it->second;
    std::string joined = current == absent_id ? std::string{} : *strings_[current];
    joined += *strings_[suffix];
    const uint32_t id = intern(joined);
    appends_.emplace(memo_key, id);
    return id;
  }

private:
  std::unordered_map<std::string, uint32_t> ids_;
  std::vector<const std::string*> strings_;
  std::unordered_map<uint64_t, uint32_t> appends_;
};

// ---------------------------------------------------------------------------------------------
// The register model: each operation compiled to a step on value ids.

enum class step_kind : uint8_t {
  read,     // accepted iff the value is `arg`
  write,    // always accepted; the value becomes `value`
  cas_swap, // accepted iff the value is `arg`; the value becomes `value`
  cas_fail, // accepted iff the value is not `arg`; the value stays
  append,   // always accepted; `value` is appended
};

struct step {
  step_kind kind = step_kind::read;
  uint32_t arg = absent_id;
  uint32_t value = absent_id;
  /// Known completion: the search must linearize it. An unknown outcome need not be: leaving
  /// it out of the linearization is the case where it never took effect.
  bool required = true;
};

/// Applies `s` to `current`; false if the model rejects it there.
bool apply(const step& s, uint32_t current, value_table& values, uint32_t& next) {
  switch (s.kind) {
  case step_kind::read:
    next = current;
    return current == s.arg;
  case step_kind::write:
    next = s.value;
    return true;
  case step_kind::cas_swap:
    next = s.value;
    return current == s.arg;
  case step_kind::cas_fail:
    next = current;
    return current != s.arg;
  case step_kind::append:
    next = values.append(current, s.value);
    return true;
  }
  return false;
}

/// Whether an operation is left out of the check: it took no effect (and returned nothing
/// the model must explain).
bool took_no_effect(const operation& op) {
  return op.result == outcome::rejected || (op.result == outcome::fail && op.kind != op_kind::cas);
}

/// Whether the search must consider an operation that was not left out. A read whose outcome
/// is unknown changed nothing and its answer was never seen, so any history with it is
/// linearizable iff the history without it is.
bool searched(const operation& op) {
  return !(op.result == outcome::unknown && op.kind == op_kind::read);
}

step compile(const operation& op, value_table& values) {
  step s;
  s.required = op.result != outcome::unknown;
  switch (op.kind) {
  case op_kind::read:
    s.kind = step_kind::read;
    s.arg = values.intern(op.read_value);
    break;
  case op_kind::write:
    s.kind = step_kind::write;
    s.value = values.intern(op.value);
    break;
  case op_kind::cas:
    // An unknown cas is tried only as a swap: where the compare would fail it changes nothing,
    // which is the same as never taking effect (it is not required).
    s.kind = op.result == outcome::fail ? step_kind::cas_fail : step_kind::cas_swap;
    s.arg = values.intern(op.expected);
    s.value = values.intern(op.value);
    break;
  case op_kind::append:
    s.kind = step_kind::append;
    s.value = values.intern(op.value);
    break;
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Lowe's cache: a set of (linearized-set bitset, value id) pairs in one open-addressing table.
//
// An entry is `words` 64-bit words of bitset followed by one word holding the value id, stored
// back to back in `entries_`. The hash is computed incrementally by the search: the XOR of a
// random 64-bit code per linearized operation (Zobrist hashing), mixed with the value id, so
// neither lifting nor hashing walks the bitset.

class config_cache {
public:
  explicit config_cache(std::size_t words) : words_(words), slots_(1024, 0), hashes_(1024, 0) {}

  /// Inserts the pair; false if it was already there.
  bool insert(const std::vector<uint64_t>& bits, uint32_t value, uint64_t hash) {
    const std::size_t stride = words_ + 1;
    std::size_t mask = slots_.size() - 1;
    for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
      const uint32_t slot = slots_[i];
      if (slot == 0)
        break;
      if (hashes_[i] != hash)
        continue;
      const uint64_t* entry = &entries_[(slot - 1) * stride];
      if (entry[words_] == value && std::equal(bits.begin(), bits.end(), entry))
        return false;
    }
    entries_.insert(entries_.end(), bits.begin(), bits.end());
    entries_.push_back(value);
    ++count_;
    if (2 * count_ > slots_.size())
      grow();
    mask = slots_.size() - 1;
    std::size_t i = hash & mask;
    while (slots_[i] != 0)
      i = (i + 1) & mask;
    slots_[i] = static_cast<uint32_t>(count_);
    hashes_[i] = hash;
    return true;
  }

  std::size_t size() const { return count_; }

  std::size_t bytes() const {
    return entries_.capacity() * sizeof(uint64_t) +
           slots_.size() * (sizeof(uint32_t) + sizeof(uint64_t));
  }

  /// Slots are 32-bit entry numbers; past this many entries the search gives up.
  static constexpr std::size_t max_entries = std::numeric_limits<uint32_t>::max() / 2;

private:
  void grow() {
    std::vector<uint32_t> slots(slots_.size() * 2, 0);
    std::vector<uint64_t> hashes(hashes_.size() * 2, 0);
    const std::size_t mask = slots.size() - 1;
    for (std::size_t j = 0; j < slots_.size(); ++j) {
      if (slots_[j] == 0)
        continue;
      std::size_t i = hashes_[j] & mask;
      while (slots[i] != 0)
        i = (i + 1) & mask;
      slots[i] = slots_[j];
      hashes[i] = hashes_[j];
    }
    slots_ = std::move(slots);
    hashes_ = std::move(hashes);
  }

  std::size_t words_;
  std::size_t count_ = 0;
  std::vector<uint64_t> entries_;
  std::vector<uint32_t> slots_; // 0: empty, else 1 + the entry's number
  std::vector<uint64_t> hashes_;
};

// ---------------------------------------------------------------------------------------------
// The search of one key.

enum class key_verdict { linearizable, not_linearizable, timed_out, out_of_memory };

struct key_search {
  key_verdict answer = key_verdict::linearizable;
  uint64_t states = 0;
  /// The longest partial linearization reached (operation numbers, in order), and the value
  /// after it.
  std::vector<uint32_t> best;
  uint32_t best_value = absent_id;
};

/// The event list: node 0 is the head, nodes 1..n the events in time order; the list is
/// circular, so the node after the last event is the head again.
struct event_list {
  std::vector<uint32_t> next, prev;
  std::vector<uint32_t> op;       // the operation of each node
  std::vector<uint8_t> is_return; // a return event (else a call)
  std::vector<uint32_t> ret_node; // per operation: its return node, 0 if its outcome is unknown

  void unlink(uint32_t n) {
    next[prev[n]] = next[n];
    prev[next[n]] = prev[n];
  }
  // Dancing links: an unlinked node still knows its neighbours, so relinking in the reverse
  // order of unlinking restores the list exactly.
  void relink(uint32_t n) {
    next[prev[n]] = n;
    prev[next[n]] = n;
  }
  void lift(uint32_t call) {
    unlink(call);
    if (const uint32_t r = ret_node[op[call]]; r != 0)
      unlink(r);
  }
  void unlift(uint32_t call) {
    if (const uint32_t r = ret_node[op[call]]; r != 0)
      relink(r);
    relink(call);
  }
};

/// Builds the list for `ops` (the operations of one key, numbered by their index). Events are
/// sorted by time; at equal times calls come before returns (an operation invoked when another
/// completes overlaps it, see the header), then by operation number.
event_list build_events(const std::vector<const operation*>& ops) {
  struct event {
    int64_t time;
    bool is_return;
    uint32_t op;
  };
  std::vector<event> events;
  events.reserve(2 * ops.size());
  for (uint32_t i = 0; i < ops.size(); ++i) {
    events.push_back({ops[i]->invoke, false, i});
    if (ops[i]->result != outcome::unknown)
      events.push_back({std::max(ops[i]->complete, ops[i]->invoke), true, i});
  }
  std::sort(events.begin(), events.end(), [](const event& a, const event& b) {
    if (a.time != b.time)
      return a.time < b.time;
    if (a.is_return != b.is_return)
      return !a.is_return;
    return a.op < b.op;
  });
  event_list list;
  const std::size_t nodes = events.size() + 1;
  list.next.resize(nodes);
  list.prev.resize(nodes);
  list.op.assign(nodes, 0);
  list.is_return.assign(nodes, 0);
  list.ret_node.assign(ops.size(), 0);
  for (std::size_t n = 0; n < nodes; ++n) {
    list.next[n] = static_cast<uint32_t>((n + 1) % nodes);
    list.prev[n] = static_cast<uint32_t>((n + nodes - 1) % nodes);
  }
  for (std::size_t k = 0; k < events.size(); ++k) {
    const auto n = static_cast<uint32_t>(k + 1);
    list.op[n] = events[k].op;
    list.is_return[n] = events[k].is_return ? 1 : 0;
    if (events[k].is_return)
      list.ret_node[events[k].op] = n;
  }
  return list;
}

struct budget {
  clock_type::time_point deadline;
  std::size_t max_cache_bytes;
};

key_search search_key(const std::vector<step>& steps, event_list& list, uint32_t initial,
                      value_table& values, const budget& limits) {
  key_search out;
  const std::size_t n = steps.size();
  const std::size_t words = (n + 63) / 64;
  std::vector<uint64_t> linearized(words, 0);
  std::vector<uint64_t> zobrist(n);
  for (std::size_t i = 0; i < n; ++i)
    zobrist[i] = splitmix64(i);
  config_cache cache(words);

  struct frame {
    uint32_t call;  // the lifted call node
    uint32_t value; // the value before it
  };
  std::vector<frame> stack;
  stack.reserve(n);

  std::size_t required_left = 0;
  for (const step& s : steps)
    required_left += s.required ? 1 : 0;

  // out.best is kept equal to the longest stack seen, copying only what changed: its first
  // `agree` entries are known to equal the stack's (linear in the number of lifts overall).
  std::size_t agree = 0;
  uint32_t value = initial;
  uint64_t set_hash = 0;
  uint64_t steps_taken = 0;
  uint32_t cur = list.next[0];
  auto value_code = [](uint32_t v) { return splitmix64(0x5eed0000'00000000ULL ^ v); };
  auto flip = [&](uint32_t op) {
    linearized[op / 64] ^= uint64_t{1} << (op % 64);
    set_hash ^= zobrist[op];
  };

  while (required_left > 0) {
    if (++steps_taken % budget_check_interval == 0) {
      if (clock_type::now() >= limits.deadline) {
        out.answer = key_verdict::timed_out;
        break;
      }
      if (cache.bytes() > limits.max_cache_bytes || cache.size() > config_cache::max_entries) {
        out.answer = key_verdict::out_of_memory;
        break;
      }
    }
    // The head: only possible if the list ran out of returns, which `required_left > 0`
    // excludes; treated like a return (backtrack) to be safe.
    if (cur != 0 && !list.is_return[cur]) {
      const uint32_t op = list.op[cur];
      uint32_t next_value = value;
      if (apply(steps[op], value, values, next_value)) {
        flip(op);
        if (cache.insert(linearized, next_value, set_hash ^ value_code(next_value))) {
          stack.push_back({cur, value});
          value = next_value;
          list.lift(cur);
          required_left -= steps[op].required ? 1u : 0u;
          if (stack.size() > out.best.size()) {
            out.best.resize(stack.size());
            for (std::size_t k = agree; k < stack.size(); ++k)
              out.best[k] = list.op[stack[k].call];
            agree = stack.size();
            out.best_value = value;
          }
          cur = list.next[0];
          continue;
        }
        // Reached before by another order, and explored from there without success.
        flip(op);
      }
      cur = list.next[cur];
      continue;
    }
    // A return (or the head): its operation cannot be linearized any later. Undo the last lift
    // and try the call after it.
    if (stack.empty()) {
      out.answer = key_verdict::not_linearizable;
      break;
    }
    const frame top = stack.back();
    stack.pop_back();
    agree = std::min(agree, stack.size());
    const uint32_t op = list.op[top.call];
    flip(op);
    value = top.value;
    list.unlift(top.call);
    required_left += steps[op].required ? 1u : 0u;
    cur = list.next[top.call];
  }
  out.states = cache.size();
  return out;
}

// ---------------------------------------------------------------------------------------------
// Explanations.

std::string explain(const std::string& key, const std::vector<const operation*>& ops,
                    const event_list& list, const key_search& found, const value_table& values,
                    key_verdict answer, std::chrono::milliseconds elapsed) {
  std::ostringstream out;
  // Number the operations by invocation, the order they are listed in.
  std::vector<uint32_t> order(ops.size());
  for (uint32_t i = 0; i < ops.size(); ++i)
    order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](uint32_t a, uint32_t b) { return ops[a]->invoke < ops[b]->invoke; });
  std::vector<std::size_t> number(ops.size());
  for (std::size_t k = 0; k < order.size(); ++k)
    number[order[k]] = k + 1;

  std::size_t required = 0;
  for (const operation* op : ops)
    required += op->result != outcome::unknown ? 1 : 0;
  out << "key " << quote(key) << ": ";
  switch (answer) {
  case key_verdict::not_linearizable:
    out << "not linearizable";
    break;
  case key_verdict::timed_out:
    out << "timed out (the check's budget ran out after " << elapsed.count()
        << " ms); no violation found so far";
    break;
  case key_verdict::out_of_memory:
    out << "gave up (the search cache outgrew check_options::max_cache_bytes); no violation "
           "found so far";
    break;
  case key_verdict::linearizable:
    out << "linearizable";
    break;
  }
  out << "\n  " << ops.size() << " operations (" << required << " with a known outcome), "
      << found.states << " search states\n";

  std::vector<bool> placed(ops.size(), false);
  for (const uint32_t op : found.best)
    placed[op] = true;
  out << "  longest linearizable prefix found: " << found.best.size() << " of " << ops.size()
      << " operations";
  if (!found.best.empty()) {
    out << ":";
    for (const uint32_t op : found.best)
      out << " #" << number[op];
  }
  out << "\n  value after it: " << quote(values.value(found.best_value)) << "\n";
  if (answer == key_verdict::not_linearizable) {
    // From the longest prefix the walk lifted nothing (a lift would have made it longer), so
    // it went from the head to the first return left, in time order: the operation of that
    // return cannot take effect on the value after the prefix, and neither can any other
    // operation invoked before that return.
    for (uint32_t n = 1; n < list.op.size(); ++n) {
      if (list.is_return[n] && !placed[list.op[n]]) {
        out << "  could not place #" << number[list.op[n]] << " " << to_string(*ops[list.op[n]])
            << "\n  (after the prefix, neither it nor any other operation invoked before it "
               "completed can take effect)\n";
        break;
      }
    }
  }
  out << "  operations by invocation (* = in the prefix):\n";
  for (std::size_t k = 0; k < order.size() && k < max_listed_operations; ++k)
    out << (placed[order[k]] ? "  * #" : "    #") << (k + 1) << " " << to_string(*ops[order[k]])
        << "\n";
  if (order.size() > max_listed_operations)
    out << "    ... " << (order.size() - max_listed_operations) << " more\n";
  return out.str();
}

clock_type::time_point deadline_after(clock_type::time_point start,
                                      std::chrono::milliseconds timeout) {
  const auto room =
      std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::time_point::max() - start);
  if (timeout >= room)
    return clock_type::time_point::max();
  return start + timeout;
}

} // namespace

check_result check(const std::vector<operation>& history, const check_options& opts) {
  const auto start = clock_type::now();
  const budget limits{deadline_after(start, opts.timeout), opts.max_cache_bytes};

  // P-compositionality: each key is a register of its own.
  std::unordered_map<std::string, std::vector<const operation*>> by_key;
  check_result result;
  for (const operation& op : history) {
    if (took_no_effect(op))
      continue;
    ++result.operations;
    by_key[op.key].push_back(&op);
  }
  result.keys = by_key.size();

  std::vector<const std::pair<const std::string, std::vector<const operation*>>*> keys;
  keys.reserve(by_key.size());
  for (const auto& entry : by_key)
    keys.push_back(&entry);
  std::sort(keys.begin(), keys.end(), [](const auto* a, const auto* b) {
    if (a->second.size() != b->second.size())
      return a->second.size() < b->second.size();
    return a->first < b->first;
  });

  // The first key that timed out or ran out of memory, and its explanation: the answer if no
  // key is found not linearizable.
  std::optional<std::pair<std::string, std::string>> gave_up;
  for (const auto* entry : keys) {
    const std::string& key = entry->first;
    std::vector<const operation*> ops;
    for (const operation* op : entry->second)
      if (searched(*op))
        ops.push_back(op);
    if (ops.size() >= std::numeric_limits<uint32_t>::max() / 4) {
      if (!gave_up)
        gave_up.emplace(key, "key " + quoted(key) + ": too many operations to search");
      continue;
    }

    value_table values;
    std::vector<step> steps;
    steps.reserve(ops.size());
    for (const operation* op : ops)
      steps.push_back(compile(*op, values));
    const uint32_t initial = values.intern(opts.initial);
    event_list list = build_events(ops);

    key_search found;
    if (clock_type::now() >= limits.deadline)
      found.answer = key_verdict::timed_out;
    else
      found = search_key(steps, list, initial, values, limits);
    result.states += found.states;
    if (found.answer == key_verdict::linearizable)
      continue;

    const auto elapsed =
        std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - start);
    if (found.answer == key_verdict::not_linearizable) {
      result.answer = verdict::not_linearizable;
      result.key = key;
      result.explanation = explain(key, ops, list, found, values, found.answer, elapsed);
      return result;
    }
    if (!gave_up)
      gave_up.emplace(key, explain(key, ops, list, found, values, found.answer, elapsed));
    if (found.answer == key_verdict::timed_out)
      break; // the budget is spent for every key
  }
  if (gave_up) {
    result.answer = verdict::timed_out;
    result.key = gave_up->first;
    result.explanation = gave_up->second;
  }
  return result;
}

std::string to_string(op_kind kind) {
  switch (kind) {
  case op_kind::read:
    return "read";
  case op_kind::write:
    return "write";
  case op_kind::cas:
    return "cas";
  case op_kind::append:
    return "append";
  }
  return "op_kind(" + std::to_string(static_cast<int>(kind)) + ")";
}

std::string to_string(outcome result) {
  switch (result) {
  case outcome::ok:
    return "ok";
  case outcome::fail:
    return "fail";
  case outcome::rejected:
    return "rejected";
  case outcome::unknown:
    return "unknown";
  }
  return "outcome(" + std::to_string(static_cast<int>(result)) + ")";
}

std::string to_string(verdict answer) {
  switch (answer) {
  case verdict::linearizable:
    return "linearizable";
  case verdict::not_linearizable:
    return "not linearizable";
  case verdict::timed_out:
    return "timed out";
  }
  return "verdict(" + std::to_string(static_cast<int>(answer)) + ")";
}

std::string to_string(const operation& op) {
  std::string out = "[" + std::to_string(op.invoke) + ", ";
  out += op.result == outcome::unknown ? "inf)" : std::to_string(op.complete) + "]";
  out += " c" + std::to_string(op.client) + " " + to_string(op.kind) + " " + quoted(op.key);
  switch (op.kind) {
  case op_kind::read:
    break;
  case op_kind::write:
  case op_kind::append:
    out += " " + quoted(op.value);
    break;
  case op_kind::cas:
    out += " from " + quote(op.expected) + " to " + quoted(op.value);
    break;
  }
  out += " -> ";
  out += op.kind == op_kind::read && op.result == outcome::ok ? quote(op.read_value)
                                                              : to_string(op.result);
  return out;
}

} // namespace cafraft::lin
