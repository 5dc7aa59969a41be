// Tests of the linearizability checker: known answers on the shared corpus (Jepsen etcd
// register histories and multi-key KV histories, with the parsers for their formats), small
// handmade histories for each rule of the model, randomized histories of a real register, and
// the saved-history line format.
#include "tests/lin/linearizability.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>

namespace cafraft::lin {

// GoogleTest prints verdicts by name (found by argument-dependent lookup).
void PrintTo(verdict answer, std::ostream* out) {
  *out << to_string(answer);
}

namespace {

namespace fs = std::filesystem;

// =============================================================================================
// Parsers for the corpus (../shared/linearizability-testdata/README.md). In both formats a
// process has at most one operation outstanding: a completion belongs to that process's pending
// invocation, and the line number is the time.

/// Keeps the pending invocation of each process; `history` is in invocation order.
class history_builder {
public:
  bool invoke(int process, operation op, std::string& error) {
    if (pending_.count(process) != 0) {
      error = "process " + std::to_string(process) + " invoked with an operation pending";
      return false;
    }
    pending_[process] = history_.size();
    history_.push_back(std::move(op));
    return true;
  }

  /// The pending operation of `process`, which the caller completes; nullptr if none.
  operation* complete(int process, std::string& error) {
    const auto it = pending_.find(process);
    if (it == pending_.end()) {
      error = "process " + std::to_string(process) + " completed with nothing pending";
      return nullptr;
    }
    operation* op = &history_[it->second];
    pending_.erase(it);
    return op;
  }

  /// Operations never completed have an unknown outcome.
  std::vector<operation> finish() {
    for (const auto& [process, index] : pending_)
      history_[index].result = outcome::unknown;
    pending_.clear();
    return std::move(history_);
  }

private:
  std::vector<operation> history_;
  std::map<int, std::size_t> pending_;
};

bool parse_int(std::string_view s, int64_t& out) {
  const char* end = s.data() + s.size();
  const auto [ptr, ec] = std::from_chars(s.data(), end, out);
  return !s.empty() && ec == std::errc{} && ptr == end;
}

/// Jepsen etcd logs: `INFO  jepsen.util - <proc> <type> <f> <value>`, whitespace-separated
/// (tabs or spaces). Types :invoke :ok :fail :info; functions :read :write :cas; values nil,
/// an integer, [expected new] for a cas, or :timed-out. One register, initially absent.
std::optional<std::vector<operation>> parse_jepsen(std::istream& in, std::string& error) {
  constexpr std::string_view marker = "jepsen.util - ";
  history_builder builder;
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    auto fail = [&](const std::string& why) {
      error = "line " + std::to_string(number) + ": " + why + ": " + line;
      return std::nullopt;
    };
    const std::size_t at = line.find(marker);
    if (at == std::string::npos) {
      if (line.find_first_not_of(" \t\r") == std::string::npos)
        continue;
      return fail("not a jepsen.util line");
    }
    std::istringstream fields(line.substr(at + marker.size()));
    std::string process_text, type, f, value, rest;
    fields >> process_text >> type >> f;
    std::getline(fields >> std::ws, value);
    if (!value.empty() && value.back() == '\r')
      value.pop_back();
    int64_t process = 0;
    if (!parse_int(process_text, process))
      return fail("bad process");

    if (type == ":invoke") {
      operation op;
      op.client = static_cast<int>(process);
      op.key = "r";
      op.invoke = number;
      if (f == ":read") {
        op.kind = op_kind::read;
      } else if (f == ":write") {
        op.kind = op_kind::write;
        op.value = value;
      } else if (f == ":cas") {
        op.kind = op_kind::cas;
        std::istringstream pair(value);
        std::string expected, next;
        if (value.size() < 5 || value.front() != '[' || value.back() != ']' ||
            !(pair.ignore(1) >> expected >> next))
          return fail("bad cas value");
        next.pop_back(); // the ']'
        op.expected = expected;
        op.value = next;
      } else {
        return fail("unknown function");
      }
      if (!builder.invoke(op.client, std::move(op), error))
        return fail(error);
      continue;
    }
    operation* op = builder.complete(static_cast<int>(process), error);
    if (op == nullptr)
      return fail(error);
    op->complete = number;
    if (type == ":ok") {
      op->result = outcome::ok;
      if (op->kind == op_kind::read && value != "nil")
        op->read_value = value;
    } else if (type == ":fail") {
      op->result = outcome::fail;
    } else if (type == ":info") {
      op->result = outcome::unknown;
    } else {
      return fail("unknown type");
    }
  }
  return builder.finish();
}

/// One EDN value of the KV corpus: a string, a keyword (with its ':'), an integer or nil.
struct edn_value {
  enum { string, keyword, integer, nil } type = nil;
  std::string text;
};

/// Parses one flat EDN map like `{:process 0, :type :ok, :f :get, :key "3", :value "x"}`.
std::optional<std::map<std::string, edn_value>> parse_edn_map(std::string_view s,
                                                              std::string& error) {
  std::size_t i = 0;
  auto skip = [&] {
    while (i < s.size() && (s[i] == ' ' || s[i] == ',' || s[i] == '\t' || s[i] == '\r'))
      ++i;
  };
  auto token = [&] {
    const std::size_t begin = i;
    while (i < s.size() && s[i] != ' ' && s[i] != ',' && s[i] != '}' && s[i] != '\r')
      ++i;
    return std::string(s.substr(begin, i - begin));
  };
  std::map<std::string, edn_value> map;
  skip();
  if (i == s.size() || s[i++] != '{') {
    error = "expected '{'";
    return std::nullopt;
  }
  while (true) {
    skip();
    if (i == s.size()) {
      error = "unterminated map";
      return std::nullopt;
    }
    if (s[i] == '}')
      break;
    if (s[i] != ':') {
      error = "expected a keyword at column " + std::to_string(i + 1);
      return std::nullopt;
    }
    const std::string name = token();
    skip();
    edn_value value;
    if (i < s.size() && s[i] == '"') {
      value.type = edn_value::string;
      for (++i;; ++i) {
        if (i == s.size()) {
          error = "unterminated string";
          return std::nullopt;
        }
        if (s[i] == '"')
          break;
        if (s[i] == '\\' && ++i == s.size())
          continue; // reported as unterminated above
        value.text += s[i];
      }
      ++i;
    } else {
      value.text = token();
      int64_t ignored = 0;
      if (value.text == "nil")
        value.type = edn_value::nil;
      else if (!value.text.empty() && value.text.front() == ':')
        value.type = edn_value::keyword;
      else if (parse_int(value.text, ignored))
        value.type = edn_value::integer;
      else {
        error = "bad value '" + value.text + "'";
        return std::nullopt;
      }
    }
    map[name] = std::move(value);
  }
  return map;
}

/// KV histories: one EDN map a line with :process, :type (:invoke :ok :fail :info), :f (:get
/// :put :append), :key and :value. Many keys, each initially "".
std::optional<std::vector<operation>> parse_kv(std::istream& in, std::string& error) {
  history_builder builder;
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    auto fail = [&](const std::string& why) {
      error = "line " + std::to_string(number) + ": " + why + ": " + line;
      return std::nullopt;
    };
    if (line.find_first_not_of(" \t\r") == std::string::npos)
      continue;
    auto map = parse_edn_map(line, error);
    if (!map)
      return fail(error);
    const edn_value& process = (*map)[":process"];
    const edn_value& type = (*map)[":type"];
    const edn_value& f = (*map)[":f"];
    const edn_value& key = (*map)[":key"];
    const edn_value& value = (*map)[":value"];
    int64_t client = 0;
    if (process.type != edn_value::integer || !parse_int(process.text, client) ||
        type.type != edn_value::keyword || f.type != edn_value::keyword ||
        key.type != edn_value::string)
      return fail("missing or bad :process, :type, :f or :key");

    if (type.text == ":invoke") {
      operation op;
      op.client = static_cast<int>(client);
      op.key = key.text;
      op.invoke = number;
      if (f.text == ":get")
        op.kind = op_kind::read;
      else if (f.text == ":put")
        op.kind = op_kind::write;
      else if (f.text == ":append")
        op.kind = op_kind::append;
      else
        return fail("unknown :f");
      if (op.kind != op_kind::read) {
        if (value.type != edn_value::string)
          return fail(":value of a put or append is not a string");
        op.value = value.text;
      }
      if (!builder.invoke(op.client, std::move(op), error))
        return fail(error);
      continue;
    }
    operation* op = builder.complete(static_cast<int>(client), error);
    if (op == nullptr)
      return fail(error);
    if (op->key != key.text)
      return fail("completion for another key");
    op->complete = number;
    if (type.text == ":ok") {
      op->result = outcome::ok;
      if (op->kind == op_kind::read && value.type == edn_value::string)
        op->read_value = value.text;
    } else if (type.text == ":fail") {
      op->result = outcome::fail;
    } else if (type.text == ":info") {
      op->result = outcome::unknown;
    } else {
      return fail("unknown :type");
    }
  }
  return builder.finish();
}

// =============================================================================================
// The corpus.

const fs::path corpus_dir{CAFRAFT_LIN_TESTDATA};

struct expected_answer {
  std::string file; // relative to corpus_dir, e.g. jepsen/etcd_000.log
  bool linearizable = false;
};

/// expected.tsv, or nullopt with the reason (a missing corpus is a failure, never a skip).
std::optional<std::vector<expected_answer>> load_expected(std::string& error) {
  if (!fs::is_directory(corpus_dir)) {
    error = "the linearizability corpus is missing: no directory " + corpus_dir.string() +
            " (it is shared/linearizability-testdata beside the repository; CI copies shared/ "
            "there)";
    return std::nullopt;
  }
  std::ifstream in(corpus_dir / "expected.tsv");
  if (!in) {
    error = "cannot read " + (corpus_dir / "expected.tsv").string();
    return std::nullopt;
  }
  std::vector<expected_answer> answers;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty())
      continue;
    const std::size_t tab = line.find('\t');
    const std::string answer = tab == std::string::npos ? "" : line.substr(tab + 1);
    if (answer != "linearizable" && answer != "NOT-linearizable") {
      error = "bad line in expected.tsv: " + line;
      return std::nullopt;
    }
    answers.push_back({line.substr(0, tab), answer == "linearizable"});
  }
  return answers;
}

/// The corpus file with no asserted answer: it is only required to be checked to the end.
const std::string unasserted_file = "jepsen/etcd_095.log";

std::optional<std::vector<operation>> load(const std::string& file, std::string& error) {
  std::ifstream in(corpus_dir / file);
  if (!in) {
    error = "cannot read " + (corpus_dir / file).string();
    return std::nullopt;
  }
  auto history = file.rfind("kv/", 0) == 0 ? parse_kv(in, error) : parse_jepsen(in, error);
  if (!history)
    error = file + ": " + error;
  return history;
}

check_options corpus_options(const std::string& file) {
  check_options opts;
  if (file.rfind("kv/", 0) == 0)
    opts.initial = "";
  opts.timeout = std::chrono::seconds{60};
  return opts;
}

double cpu_ms(std::clock_t begin, std::clock_t end) {
  return 1000.0 * static_cast<double>(end - begin) / CLOCKS_PER_SEC;
}

TEST(LinCorpus, IsPresentAndComplete) {
  std::string error;
  const auto answers = load_expected(error);
  ASSERT_TRUE(answers) << error;
  std::map<std::string, int> counts; // jepsen/kv x yes/no
  std::set<std::string> listed;
  for (const auto& a : *answers) {
    listed.insert(a.file);
    ++counts[a.file.substr(0, a.file.find('/')) + (a.linearizable ? " yes" : " no")];
  }
  EXPECT_EQ(answers->size(), 108u);
  EXPECT_EQ(counts["jepsen yes"], 23);
  EXPECT_EQ(counts["jepsen no"], 79);
  EXPECT_EQ(counts["kv yes"], 3);
  EXPECT_EQ(counts["kv no"], 3);
  // Every history in the corpus is checked: none is silently left out.
  for (const char* dir : {"jepsen", "kv"}) {
    for (const auto& entry : fs::directory_iterator(corpus_dir / dir)) {
      const std::string file = std::string(dir) + "/" + entry.path().filename().string();
      EXPECT_TRUE(listed.count(file) != 0 || file == unasserted_file)
          << file << " has no expected answer";
    }
  }
  EXPECT_TRUE(fs::exists(corpus_dir / unasserted_file));
}

/// Checks every listed file of one directory of the corpus and prints the times.
void check_corpus(const std::string& dir) {
  std::string error;
  const auto answers = load_expected(error);
  ASSERT_TRUE(answers) << error;
  std::vector<expected_answer> files;
  for (const auto& a : *answers)
    if (a.file.rfind(dir + "/", 0) == 0)
      files.push_back(a);
  if (dir == "jepsen")
    files.push_back({unasserted_file, false});
  ASSERT_FALSE(files.empty());

  using wall = std::chrono::steady_clock;
  double total_ms = 0, slowest_ms = 0;
  std::string slowest;
  uint64_t states = 0;
  const std::clock_t cpu_begin = std::clock();
  for (const auto& expected : files) {
    const auto history = load(expected.file, error);
    ASSERT_TRUE(history) << error;
    const auto begin = wall::now();
    const check_result result = check(*history, corpus_options(expected.file));
    const double ms = std::chrono::duration<double, std::milli>(wall::now() - begin).count();
    total_ms += ms;
    states += result.states;
    if (ms > slowest_ms) {
      slowest_ms = ms;
      slowest = expected.file;
    }
    ASSERT_NE(result.answer, verdict::timed_out) << expected.file << "\n" << result.explanation;
    if (expected.file == unasserted_file)
      continue;
    EXPECT_EQ(result.answer,
              expected.linearizable ? verdict::linearizable : verdict::not_linearizable)
        << expected.file << " (" << history->size() << " operations)\n"
        << result.explanation;
    if (result.answer == verdict::not_linearizable) {
      EXPECT_FALSE(result.explanation.empty());
      EXPECT_NE(result.explanation.find("could not place"), std::string::npos);
    }
  }
  const double cpu = cpu_ms(cpu_begin, std::clock());
  // Porcupine needs about 17 s for the corpus here; this checker a small fraction of a second
  // (a few times more under the sanitizers).
  EXPECT_LT(cpu, 10'000.0) << "the " << dir << " corpus took " << cpu << " ms of CPU";
  std::printf("[ corpus   ] %s: %zu files checked in %.0f ms (parsing included: %.0f ms of CPU), "
              "%llu search states; slowest %s: %.0f ms\n",
              dir.c_str(), files.size(), total_ms, cpu, static_cast<unsigned long long>(states),
              slowest.c_str(), slowest_ms);
}

TEST(LinCorpus, JepsenEtcdRegisterHistories) {
  check_corpus("jepsen");
}

TEST(LinCorpus, MultiKeyKvHistories) {
  check_corpus("kv");
}

TEST(LinCorpus, ParsersReadTheFormats) {
  std::istringstream jepsen("INFO  jepsen.util - 1\t:invoke\t:cas\t[3 4]\n"
                            "INFO  jepsen.util - 2   :invoke :read   nil\n"
                            "INFO  jepsen.util - 2\t:ok\t:read\tnil\n"
                            "INFO  jepsen.util - 1\t:fail\t:cas\t[3 4]\n"
                            "INFO  jepsen.util - 3\t:invoke\t:write\t7\n"
                            "INFO  jepsen.util - 3\t:info\t:write\t:timed-out\n");
  std::string error;
  const auto h = parse_jepsen(jepsen, error);
  ASSERT_TRUE(h) << error;
  ASSERT_EQ(h->size(), 3u);
  EXPECT_EQ(to_string((*h)[0]), R"([1, 4] c1 cas "r" from "3" to "4" -> fail)");
  EXPECT_EQ(to_string((*h)[1]), R"([2, 3] c2 read "r" -> absent)");
  EXPECT_EQ(to_string((*h)[2]), R"([5, inf) c3 write "r" "7" -> unknown)");

  std::istringstream kv(R"({:process 0, :type :invoke, :f :append, :key "k", :value "x 0 y"})"
                        "\n"
                        R"({:process 1, :type :invoke, :f :get, :key "k", :value nil})"
                        "\n"
                        R"({:process 1, :type :ok, :f :get, :key "k", :value "x 0 y"})"
                        "\n");
  const auto k = parse_kv(kv, error);
  ASSERT_TRUE(k) << error;
  ASSERT_EQ(k->size(), 2u);
  EXPECT_EQ(to_string((*k)[0]), R"([1, inf) c0 append "k" "x 0 y" -> unknown)");
  EXPECT_EQ(to_string((*k)[1]), R"([2, 3] c1 read "k" -> "x 0 y")");

  std::istringstream twice("INFO  jepsen.util - 1\t:invoke\t:read\tnil\n"
                           "INFO  jepsen.util - 1\t:invoke\t:read\tnil\n");
  EXPECT_FALSE(parse_jepsen(twice, error));
  EXPECT_NE(error.find("line 2"), std::string::npos) << error;
}

// =============================================================================================
// Handmade histories.

operation write_op(std::string key, std::string value, int64_t invoke, int64_t complete,
                   outcome result = outcome::ok) {
  operation op;
  op.key = std::move(key);
  op.kind = op_kind::write;
  op.value = std::move(value);
  op.result = result;
  op.invoke = invoke;
  op.complete = complete;
  return op;
}

operation read_op(std::string key, std::optional<std::string> seen, int64_t invoke,
                  int64_t complete, outcome result = outcome::ok) {
  operation op;
  op.key = std::move(key);
  op.kind = op_kind::read;
  op.read_value = std::move(seen);
  op.result = result;
  op.invoke = invoke;
  op.complete = complete;
  return op;
}

operation cas_op(std::string key, std::optional<std::string> expected, std::string value,
                 int64_t invoke, int64_t complete, outcome result = outcome::ok) {
  operation op = write_op(std::move(key), std::move(value), invoke, complete, result);
  op.kind = op_kind::cas;
  op.expected = std::move(expected);
  return op;
}

operation append_op(std::string key, std::string value, int64_t invoke, int64_t complete,
                    outcome result = outcome::ok) {
  operation op = write_op(std::move(key), std::move(value), invoke, complete, result);
  op.kind = op_kind::append;
  return op;
}

/// Whether `history` gets the `expected` answer; on failure the message holds the explanation.
testing::AssertionResult gives(verdict expected, const std::vector<operation>& history,
                               const check_options& opts = {}) {
  const check_result result = check(history, opts);
  if (result.answer == expected)
    return testing::AssertionSuccess();
  return testing::AssertionFailure()
         << "expected " << to_string(expected) << ", got " << to_string(result.answer) << "\n"
         << result.explanation;
}

constexpr auto yes = verdict::linearizable;
constexpr auto no = verdict::not_linearizable;

TEST(LinChecker, EmptyHistoryIsLinearizable) {
  const check_result result = check({});
  EXPECT_EQ(result.answer, yes);
  EXPECT_EQ(result.operations, 0u);
  EXPECT_EQ(result.keys, 0u);
  EXPECT_TRUE(result.key.empty());
}

TEST(LinChecker, SequentialHistory) {
  const std::vector<operation> h = {
      read_op("k", std::nullopt, 0, 1), write_op("k", "1", 2, 3),    read_op("k", "1", 4, 5),
      write_op("k", "2", 6, 7),         read_op("k", "2", 8, 9),     cas_op("k", "2", "3", 10, 11),
      read_op("k", "3", 12, 13),        append_op("k", "4", 14, 15), read_op("k", "34", 16, 17),
  };
  const check_result result = check(h);
  EXPECT_EQ(result.answer, yes) << result.explanation;
  EXPECT_EQ(result.operations, 9u);
  EXPECT_EQ(result.keys, 1u);
  EXPECT_GT(result.states, 0u);
}

TEST(LinChecker, StaleReadAfterCompletedWriteIsNot) {
  const std::vector<operation> h = {write_op("k", "1", 0, 1), write_op("k", "2", 2, 3),
                                    read_op("k", "1", 4, 5)};
  const check_result result = check(h);
  ASSERT_EQ(result.answer, no);
  EXPECT_EQ(result.key, "k");
  // The explanation lists the key's operations by invocation, the longest prefix (both writes)
  // and the read that could not be placed.
  const std::string& e = result.explanation;
  EXPECT_NE(e.find("longest linearizable prefix found: 2 of 3 operations: #1 #2"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("could not place #3 [4, 5] c0 read \"k\" -> \"1\""), std::string::npos) << e;
  EXPECT_NE(e.find("value after it: \"2\""), std::string::npos) << e;
  const auto listing = e.find("operations by invocation");
  const auto first = e.find("#1 [0, 1]", listing), second = e.find("#2 [2, 3]", listing),
             third = e.find("#3 [4, 5]", listing);
  ASSERT_NE(listing, std::string::npos) << e;
  EXPECT_TRUE(first < second && second < third) << e;
}

TEST(LinChecker, ReadsMayNotGoBackInTime) {
  // The read of 2 fixes the second write before it; a later read of 1 is then stale.
  EXPECT_TRUE(gives(no, {write_op("k", "1", 0, 1), write_op("k", "2", 2, 10),
                         read_op("k", "2", 3, 4), read_op("k", "1", 5, 6)}));
  EXPECT_TRUE(gives(yes, {write_op("k", "1", 0, 1), write_op("k", "2", 2, 10),
                          read_op("k", "1", 3, 4), read_op("k", "2", 5, 6)}));
}

TEST(LinChecker, ConcurrentWriteAndReadMaySeeEitherValue) {
  for (const char* seen : {"1", "2"})
    EXPECT_TRUE(
        gives(yes, {write_op("k", "1", 0, 1), write_op("k", "2", 2, 10), read_op("k", seen, 3, 4)}))
        << seen;
  EXPECT_TRUE(gives(yes, {write_op("k", "1", 0, 10), read_op("k", std::nullopt, 3, 4)}));
  EXPECT_TRUE(gives(yes, {write_op("k", "1", 0, 10), read_op("k", "1", 3, 4)}));
  // A value never written cannot be read.
  EXPECT_TRUE(gives(no, {write_op("k", "1", 0, 10), read_op("k", "3", 3, 4)}));
}

TEST(LinChecker, EqualTimestampsOverlap) {
  // The read is invoked at the very time the write completes: they overlap, so either order.
  EXPECT_TRUE(gives(yes, {write_op("k", "1", 0, 5), read_op("k", std::nullopt, 5, 6)}));
  EXPECT_TRUE(gives(yes, {write_op("k", "1", 0, 5), read_op("k", "1", 5, 6)}));
  // One tick later they are ordered.
  EXPECT_TRUE(gives(no, {write_op("k", "1", 0, 5), read_op("k", std::nullopt, 6, 7)}));
  // An instantaneous operation.
  EXPECT_TRUE(gives(yes, {write_op("k", "1", 3, 3), read_op("k", "1", 3, 3)}));
}

TEST(LinChecker, UnknownWriteObservedLaterIsLinearizable) {
  EXPECT_TRUE(gives(yes, {write_op("k", "1", 0, 0, outcome::unknown), read_op("k", "1", 50, 51),
                          read_op("k", "1", 52, 53)}));
  // Taking effect late: after a read that missed it.
  EXPECT_TRUE(gives(yes, {write_op("k", "1", 0, 0, outcome::unknown),
                          read_op("k", std::nullopt, 50, 51), read_op("k", "1", 52, 53)}));
}

TEST(LinChecker, UnknownWriteNeverObservedIsLinearizable) {
  EXPECT_TRUE(
      gives(yes, {write_op("k", "1", 0, 1, outcome::unknown), read_op("k", std::nullopt, 5, 6),
                  write_op("k", "2", 7, 8), read_op("k", "2", 9, 10)}));
}

TEST(LinChecker, UnknownWriteCannotTakeEffectBeforeItsInvocation) {
  EXPECT_TRUE(gives(no, {read_op("k", "1", 0, 1), write_op("k", "1", 2, 0, outcome::unknown)}));
  // Once seen, it cannot be unseen: it took effect once.
  EXPECT_TRUE(gives(no, {write_op("k", "1", 0, 0, outcome::unknown), read_op("k", "1", 5, 6),
                         read_op("k", std::nullopt, 7, 8)}));
}

TEST(LinChecker, UnknownReadIsNotChecked) {
  EXPECT_TRUE(
      gives(yes, {write_op("k", "1", 0, 1), read_op("k", "bogus", 2, 3, outcome::unknown)}));
}

TEST(LinChecker, LostAcknowledgedWriteIsNot) {
  EXPECT_TRUE(gives(no, {write_op("k", "1", 0, 1), read_op("k", std::nullopt, 2, 3)}));
  EXPECT_TRUE(
      gives(no, {write_op("k", "1", 0, 1), write_op("k", "2", 2, 3), read_op("k", "1", 4, 5)}));
}

TEST(LinChecker, CompareAndSwap) {
  // Succeeds on an absent key when expecting absent, and the swap is seen.
  EXPECT_TRUE(gives(yes, {cas_op("k", std::nullopt, "1", 0, 1), read_op("k", "1", 2, 3)}));
  // A success whose expected value the key never held.
  EXPECT_TRUE(gives(no, {write_op("k", "0", 0, 1), cas_op("k", "1", "2", 2, 3)}));
  EXPECT_TRUE(gives(no, {cas_op("k", "x", "1", 0, 1)}));
  // A failure when the key held the expected value (it should have swapped).
  EXPECT_TRUE(gives(no, {write_op("k", "1", 0, 1), cas_op("k", "1", "2", 2, 3, outcome::fail)}));
  EXPECT_TRUE(gives(no, {cas_op("k", std::nullopt, "2", 0, 1, outcome::fail)}));
  // A failure when it did not, which changes nothing.
  EXPECT_TRUE(gives(yes, {write_op("k", "0", 0, 1), cas_op("k", "1", "2", 2, 3, outcome::fail),
                          read_op("k", "0", 4, 5)}));
  // A failure that is linearizable only before a concurrent write of the expected value.
  EXPECT_TRUE(gives(yes, {write_op("k", "1", 0, 10), cas_op("k", "1", "2", 2, 3, outcome::fail)}));
  // Two successful swaps from the same value: only one can have compared equal.
  EXPECT_TRUE(gives(
      no, {write_op("k", "0", 0, 1), cas_op("k", "0", "a", 2, 10), cas_op("k", "0", "b", 2, 10)}));
  // An unknown swap may take effect (seen later) when the compare succeeds, not otherwise.
  EXPECT_TRUE(gives(yes, {write_op("k", "1", 0, 1), cas_op("k", "1", "2", 2, 3, outcome::unknown),
                          read_op("k", "2", 10, 11)}));
  EXPECT_TRUE(gives(no, {write_op("k", "1", 0, 1), cas_op("k", "5", "2", 2, 3, outcome::unknown),
                         read_op("k", "2", 10, 11)}));
}

TEST(LinChecker, Append) {
  // An absent key counts as "".
  EXPECT_TRUE(
      gives(yes, {append_op("k", "a", 0, 1), append_op("k", "b", 2, 3), read_op("k", "ab", 4, 5)}));
  EXPECT_TRUE(gives(
      yes, {append_op("k", "a", 0, 10), append_op("k", "b", 0, 10), read_op("k", "ba", 11, 12)}));
  EXPECT_TRUE(
      gives(no, {append_op("k", "a", 0, 1), append_op("k", "b", 2, 3), read_op("k", "ba", 4, 5)}));
  EXPECT_TRUE(gives(yes, {append_op("k", "a", 0, 1), append_op("k", "b", 2, 3, outcome::unknown),
                          read_op("k", "a", 4, 5), read_op("k", "ab", 6, 7)}));
  EXPECT_TRUE(gives(yes, {append_op("k", "a", 0, 1), read_op("k", "a", 2, 3)}, {}));
}

TEST(LinChecker, InitialValue) {
  check_options opts;
  opts.initial = "x";
  EXPECT_TRUE(gives(yes, {read_op("k", "x", 0, 1)}, opts));
  EXPECT_TRUE(gives(no, {read_op("k", std::nullopt, 0, 1)}, opts));
  EXPECT_TRUE(gives(yes, {append_op("k", "y", 0, 1), read_op("k", "xy", 2, 3)}, opts));
  EXPECT_TRUE(gives(no, {read_op("k", "x", 0, 1)}));
}

TEST(LinChecker, RejectedAndFailedOperationsAreIgnored) {
  EXPECT_TRUE(
      gives(yes, {write_op("k", "5", 0, 1, outcome::rejected), read_op("k", std::nullopt, 2, 3)}));
  EXPECT_TRUE(gives(no, {write_op("k", "5", 0, 1, outcome::ok), read_op("k", std::nullopt, 2, 3)}));
  EXPECT_TRUE(
      gives(yes, {write_op("k", "5", 0, 1, outcome::fail), read_op("k", std::nullopt, 2, 3)}));
  EXPECT_TRUE(
      gives(yes, {append_op("k", "5", 0, 1, outcome::fail), read_op("k", std::nullopt, 2, 3)}));
  EXPECT_TRUE(gives(yes, {cas_op("k", std::nullopt, "5", 0, 1, outcome::rejected),
                          read_op("k", std::nullopt, 2, 3)}));
  EXPECT_TRUE(gives(yes, {read_op("k", "bogus", 0, 1, outcome::rejected)}));
  EXPECT_TRUE(gives(yes, {read_op("k", "bogus", 0, 1, outcome::fail)}));

  const check_result result =
      check({write_op("k", "5", 0, 1, outcome::rejected), read_op("j", std::nullopt, 2, 3)});
  EXPECT_EQ(result.operations, 1u);
  EXPECT_EQ(result.keys, 1u);
}

TEST(LinChecker, KeysAreCheckedSeparatelyAndTheBrokenOneIsNamed) {
  std::vector<operation> h;
  // Key "a": a long, fine history; key "b": a lost write. Interleaved in time.
  for (int i = 0; i < 50; ++i) {
    h.push_back(write_op("a", std::to_string(i), 10 * i, 10 * i + 3));
    h.push_back(read_op("a", std::to_string(i), 10 * i + 4, 10 * i + 6));
  }
  h.push_back(write_op("b", "x", 100, 101));
  h.push_back(read_op("b", std::nullopt, 102, 103));
  const check_result result = check(h);
  ASSERT_EQ(result.answer, no);
  EXPECT_EQ(result.key, "b");
  EXPECT_EQ(result.keys, 2u);
  EXPECT_EQ(result.operations, 102u);
  EXPECT_NE(result.explanation.find("key \"b\": not linearizable"), std::string::npos)
      << result.explanation;
  EXPECT_EQ(result.explanation.find("\"a\""), std::string::npos) << result.explanation;

  // Without the broken key, the same history is fine. Per-key checking also makes a
  // long history of many concurrent keys cheap.
  h.resize(100);
  for (int k = 0; k < 20; ++k)
    for (int i = 0; i < 30; ++i)
      h.push_back(write_op("k" + std::to_string(k), std::to_string(i), 0, 1000));
  EXPECT_TRUE(gives(yes, h));
}

/// Many concurrent writes, then two reads after all of them that see different values: not
/// linearizable, but the search must try every order of the writes to find out.
std::vector<operation> adversarial_history(int writes) {
  std::vector<operation> h;
  for (int i = 0; i < writes; ++i)
    h.push_back(write_op("adv", "v" + std::to_string(i), 0, 100));
  h.push_back(read_op("adv", "v0", 200, 201));
  h.push_back(read_op("adv", "v1", 202, 203));
  return h;
}

TEST(LinChecker, TimeoutGivesTimedOut) {
  check_options opts;
  opts.timeout = std::chrono::milliseconds{1};
  const auto begin = std::chrono::steady_clock::now();
  const check_result result = check(adversarial_history(60), opts);
  const auto took = std::chrono::steady_clock::now() - begin;
  EXPECT_EQ(result.answer, verdict::timed_out);
  EXPECT_EQ(result.key, "adv");
  EXPECT_NE(result.explanation.find("timed out"), std::string::npos) << result.explanation;
  EXPECT_LT(took, std::chrono::seconds{2});

  // A small one finishes within the default budget.
  EXPECT_TRUE(gives(no, adversarial_history(8)));
}

TEST(LinChecker, ViolationInASmallKeyIsFoundDespiteABigOne) {
  std::vector<operation> h = adversarial_history(60);
  h.push_back(write_op("b", "x", 0, 1));
  h.push_back(read_op("b", "y", 2, 3));
  check_options opts;
  opts.timeout = std::chrono::milliseconds{500};
  const check_result result = check(h, opts);
  EXPECT_EQ(result.answer, no);
  EXPECT_EQ(result.key, "b");
}

TEST(LinChecker, MemoryBudgetGivesUp) {
  check_options opts;
  opts.max_cache_bytes = 1;
  const check_result result = check(adversarial_history(30), opts);
  EXPECT_EQ(result.answer, verdict::timed_out);
  EXPECT_NE(result.explanation.find("gave up"), std::string::npos) << result.explanation;

  // Giving up on one key does not stop the others: a bigger key checked after it is broken.
  std::vector<operation> h = adversarial_history(30);
  for (int i = 0; i < 40; ++i)
    h.push_back(write_op("z", std::to_string(i), 10 * i, 10 * i + 1));
  h.push_back(read_op("z", "0", 1000, 1001));
  const check_result broken = check(h, opts);
  EXPECT_EQ(broken.answer, no);
  EXPECT_EQ(broken.key, "z");
}

TEST(LinChecker, RendersOperations) {
  operation op = cas_op("k\t1", std::nullopt, "a\"b", 1, 2, outcome::fail);
  op.client = 7;
  EXPECT_EQ(to_string(op), R"([1, 2] c7 cas "k\t1" from absent to "a\"b" -> fail)");
  EXPECT_EQ(to_string(read_op("k", std::string("\x01\\"), 3, 4)),
            R"([3, 4] c0 read "k" -> "\x01\\")");
  EXPECT_EQ(to_string(read_op("k", "x", 3, 4, outcome::rejected)),
            R"([3, 4] c0 read "k" -> rejected)");
  EXPECT_EQ(to_string(verdict::not_linearizable), "not linearizable");
}

// =============================================================================================
// Randomized histories of a real register: every client's operation takes effect at one
// instant inside its interval, so the history is linearizable by construction; corrupting one
// read makes it not.

struct simulated {
  std::vector<operation> history;
  std::vector<std::size_t> reads; // indices of ok reads
};

simulated simulate(uint64_t seed, int clients, int per_client, int keys) {
  std::mt19937_64 rng(seed);
  auto below = [&](int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n)); };
  struct pending {
    operation op;
    int64_t effect; // the instant it takes effect
    bool takes_effect;
  };
  std::vector<pending> ops;
  int counter = 0;
  for (int c = 0; c < clients; ++c) {
    int64_t now = below(10);
    for (int i = 0; i < per_client; ++i) {
      operation op;
      op.client = c;
      op.key = "k" + std::to_string(below(keys));
      const int kind = below(10);
      op.kind = kind < 4   ? op_kind::read
                : kind < 7 ? op_kind::write
                : kind < 9 ? op_kind::cas
                           : op_kind::append;
      op.value = std::to_string(++counter) + ";";
      op.invoke = now * 16 + c; // distinct instants across clients
      const int64_t effect = now + 1 + below(6);
      now = effect + 1 + below(6);
      op.complete = now * 16 + c;
      const int fate = below(20);
      op.result = fate == 0 ? outcome::unknown : fate == 1 ? outcome::rejected : outcome::ok;
      const bool takes_effect = op.result == outcome::ok || (fate == 0 && below(2) == 0);
      ops.push_back({op, effect * 16 + c, takes_effect});
      now += 1 + below(3);
    }
  }
  // Run the register in the order of the instants of effect.
  std::sort(ops.begin(), ops.end(),
            [](const pending& a, const pending& b) { return a.effect < b.effect; });
  std::map<std::string, std::optional<std::string>> state;
  std::map<std::string, std::vector<std::string>> written;
  for (auto& p : ops) {
    operation& op = p.op;
    std::optional<std::string>& v = state[op.key];
    // Expect a value the key held at some point, or absent.
    auto& seen = written[op.key];
    op.expected =
        seen.empty() || below(4) == 0 ? std::nullopt : std::optional(seen[rng() % seen.size()]);
    if (!p.takes_effect)
      continue;
    switch (op.kind) {
    case op_kind::read:
      op.read_value = v;
      break;
    case op_kind::write:
      v = op.value;
      break;
    case op_kind::cas:
      if (v == op.expected)
        v = op.value;
      else if (op.result == outcome::ok)
        op.result = outcome::fail;
      break;
    case op_kind::append:
      v = v.value_or("") + op.value;
      break;
    }
    if (v)
      seen.push_back(*v);
  }
  simulated out;
  std::sort(ops.begin(), ops.end(),
            [](const pending& a, const pending& b) { return a.op.invoke < b.op.invoke; });
  for (auto& p : ops) {
    if (p.op.kind == op_kind::read && p.op.result == outcome::ok)
      out.reads.push_back(out.history.size());
    out.history.push_back(std::move(p.op));
  }
  return out;
}

TEST(LinChecker, RandomRegisterHistoriesAreLinearizable) {
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    const simulated sim = simulate(seed, 6, 60, 3);
    const check_result result = check(sim.history);
    ASSERT_EQ(result.answer, yes) << "seed " << seed << "\n" << result.explanation;

    // A read that returns a value never written cannot be explained.
    std::vector<operation> broken = sim.history;
    ASSERT_FALSE(sim.reads.empty());
    operation& read = broken[sim.reads[seed % sim.reads.size()]];
    read.read_value = "never written";
    const check_result bad = check(broken);
    ASSERT_EQ(bad.answer, no) << "seed " << seed;
    EXPECT_EQ(bad.key, read.key);
    EXPECT_NE(bad.explanation.find("never written"), std::string::npos);
  }
}

TEST(LinChecker, SavedHistoryGivesTheSameAnswer) {
  const simulated sim = simulate(99, 4, 40, 2);
  std::stringstream file;
  write_history(file, sim.history);
  std::string error;
  const auto read_back = read_history(file, error);
  ASSERT_TRUE(read_back) << error;
  ASSERT_EQ(read_back->size(), sim.history.size());
  for (std::size_t i = 0; i < sim.history.size(); ++i)
    EXPECT_EQ(to_line((*read_back)[i]), to_line(sim.history[i]));
  EXPECT_EQ(check(*read_back).answer, check(sim.history).answer);
}

// =============================================================================================
// The saved-history line format.

void expect_same(const operation& a, const operation& b) {
  EXPECT_EQ(a.client, b.client);
  EXPECT_EQ(a.key, b.key);
  EXPECT_EQ(a.kind, b.kind);
  EXPECT_EQ(a.value, b.value);
  EXPECT_EQ(a.expected, b.expected);
  EXPECT_EQ(a.read_value, b.read_value);
  EXPECT_EQ(a.result, b.result);
  EXPECT_EQ(a.invoke, b.invoke);
  EXPECT_EQ(a.complete, b.complete);
}

TEST(LinFormat, RoundTrip) {
  std::vector<operation> ops = {
      write_op("k", "v", 1, 2),
      read_op("k", std::nullopt, 3, 4),
      read_op("k", "", 3, 4),
      read_op("", "\\N", -5, 4),
      cas_op("tab\tkey", "new\nline", "cr\rback\\slash", 0, 0, outcome::fail),
      cas_op("#k", std::nullopt, "", 7, 8, outcome::unknown),
      append_op("k", "\\t is not a tab", std::numeric_limits<int64_t>::min(),
                std::numeric_limits<int64_t>::max(), outcome::rejected),
      append_op("k", std::string("\0\x01\xff", 3), 1, 2),
  };
  ops[1].client = -3;
  ops[2].client = std::numeric_limits<int>::max();
  ops[3].value = "unused but kept";
  ops[3].expected = "also kept";
  for (const operation& op : ops) {
    const std::string line = to_line(op);
    EXPECT_EQ(std::count(line.begin(), line.end(), '\t'), 8) << line;
    EXPECT_EQ(line.find('\n'), std::string::npos) << line;
    std::string error;
    const auto back = from_line(line, error);
    ASSERT_TRUE(back) << line << ": " << error;
    expect_same(*back, op);
  }
  EXPECT_EQ(to_line(ops[0]), "0\tk\twrite\tv\t\\N\t\\N\tok\t1\t2");
  EXPECT_EQ(to_line(ops[3]), "0\t\tread\tunused but kept\talso kept\t\\\\N\tok\t-5\t4");
}

TEST(LinFormat, HandWrittenLines) {
  std::string error;
  auto op = from_line("3\tk1\tcas\tc\tx\t\\N\tfail\t17\t20", error);
  ASSERT_TRUE(op) << error;
  EXPECT_EQ(to_string(*op), R"([17, 20] c3 cas "k1" from "x" to "c" -> fail)");
  op = from_line("3\tk1\twrite\tv\t\\N\t\\N\tunknown\t17\t-", error);
  ASSERT_TRUE(op) << error;
  EXPECT_EQ(op->result, outcome::unknown);
}

TEST(LinFormat, MalformedLinesGiveAnError) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"", "1 tab-separated fields"},
      {"1\tk\tread", "3 tab-separated fields"},
      {"1\tk\tread\t\t\\N\t\\N\tok\t1\t2\textra", "more than 9"},
      {"x\tk\tread\t\t\\N\t\\N\tok\t1\t2", "client"},
      {"99999999999\tk\tread\t\t\\N\t\\N\tok\t1\t2", "client"},
      {"1\t\\N\tread\t\t\\N\t\\N\tok\t1\t2", "key cannot be"},
      {"1\tk\tget\t\t\\N\t\\N\tok\t1\t2", "kind"},
      {"1\tk\tread\t\\q\t\\N\t\\N\tok\t1\t2", "value: bad escape"},
      {"1\tk\tread\t\tab\\\t\\N\tok\t1\t2", "expected: bad escape"},
      {"1\tk\tread\t\t\\N\t\\N\tmaybe\t1\t2", "result"},
      {"1\tk\tread\t\t\\N\t\\N\tok\t1x\t2", "invoke"},
      {"1\tk\tread\t\t\\N\t\\N\tok\t1\t", "complete"},
      {"1\tk\tread\t\t\\N\t\\N\tok\t1\t-", "complete"},
      {"1\tk\tread\t\t\\N\t\\N\tok\t+1\t2", "invoke"},
      {"1\tk\tread\t\t\\N\t\\N\tok\t99999999999999999999\t2", "invoke"},
      {"1\tk\tread\t\t\\N\t\\N\tok\t5\t2", "before invoke"},
  };
  for (const auto& [line, why] : bad) {
    std::string error;
    EXPECT_FALSE(from_line(line, error)) << line;
    EXPECT_NE(error.find(why), std::string::npos) << line << " gave: " << error;
  }
}

TEST(LinFormat, GarbageNeverCrashes) {
  // Random lines over an alphabet full of separators and escapes; whatever parses must print
  // back to a line that parses to the same operation.
  const std::string alphabet = "\t\t\t\\\\Nntr-019xk#readwritecasappendokfailunknown\"";
  std::mt19937_64 rng(7);
  int parsed = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string line;
    const std::size_t length = rng() % 60;
    for (std::size_t j = 0; j < length; ++j)
      line += alphabet[rng() % alphabet.size()];
    // Also mutate a valid line, which parses far more often.
    if (i % 2 == 0) {
      line = to_line(cas_op("k", "e", "v", 1, 2));
      for (int m = 0; m < 3; ++m)
        line[rng() % line.size()] = alphabet[rng() % alphabet.size()];
    }
    std::string error;
    const auto op = from_line(line, error);
    if (!op) {
      EXPECT_FALSE(error.empty()) << line;
      continue;
    }
    ++parsed;
    const auto again = from_line(to_line(*op), error);
    ASSERT_TRUE(again) << line << ": " << error;
    expect_same(*again, *op);
  }
  EXPECT_GT(parsed, 100);
}

TEST(LinFormat, ReadHistorySkipsCommentsAndNamesTheBadLine) {
  std::istringstream good("# a comment\n"
                          "\n"
                          "1\tk\twrite\tv\t\\N\t\\N\tok\t1\t2\r\n"
                          "2\tk\tread\t\t\\N\tv\tok\t3\t4\n");
  std::string error;
  const auto h = read_history(good, error);
  ASSERT_TRUE(h) << error;
  ASSERT_EQ(h->size(), 2u);
  EXPECT_EQ((*h)[0].complete, 2);
  EXPECT_EQ(check(*h).answer, yes);

  std::istringstream bad("# header\n1\tk\twrite\tv\t\\N\t\\N\tok\t1\t2\n1\tk\twrite\n");
  EXPECT_FALSE(read_history(bad, error));
  EXPECT_EQ(error.rfind("line 3: ", 0), 0u) << error;
}

} // namespace
} // namespace cafraft::lin
