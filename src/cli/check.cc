// `sluice check`: count, compare with the thresholds, print one Nagios line.
#include "cli/check.h"

#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "broker/redis/redis_broker.h"
#include "cli/commands.h"
#include "core/clock.h"
#include "spool/queuedir.h"
#include "spool/spool_dir.h"
#include "store/store.h"

namespace sluice::cli {
namespace {

enum Level { kOk = 0, kWarning = 1, kCritical = 2, kUnknown = 3 };
constexpr const char* kLevelNames[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};

struct Verdict {
  Level level = kOk;
  std::string summary;
  std::string perf;
};

Verdict Unknown(const std::string& why) { return Verdict{kUnknown, why, ""}; }

// One line for all the verdicts: the worst level, each summary, all perfdata.
int Print(const std::vector<Verdict>& verdicts) {
  Level level = kOk;
  std::string summary, perf;
  for (const Verdict& v : verdicts) {
    level = std::max(level, v.level);
    summary += (summary.empty() ? "" : "; ") + v.summary;
    if (!v.perf.empty()) perf += (perf.empty() ? "" : " ") + v.perf;
  }
  std::printf("SLUICE %s - %s%s%s\n", kLevelNames[level], summary.c_str(),
              perf.empty() ? "" : " | ", perf.c_str());
  return level;
}

}  // namespace

std::string HeartbeatKey(const std::string& spool_dir) {
  std::error_code ec;
  std::string root = std::filesystem::absolute(spool_dir, ec).lexically_normal().string();
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  return root;
}

// One spool's verdict: its level, what it says, its perfdata (labels prefixed by `prefix`).
Verdict CheckOne(const CheckFlags& f, const std::string& spool_dir, const std::string& db,
                 const std::string& prefix) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(spool_dir, ec)) return Unknown("no spool directory " + spool_dir);
  std::string root = HeartbeatKey(spool_dir);
  int64_t now = Clock::Real()->NowMicros();

  // A queuedir (new/ cur/ dead/) or a spool (the root, failed/).
  bool queuedir = fs::is_directory(root + "/new", ec) && fs::is_directory(root + "/cur", ec);
  // Pending: items waiting; the oldest by modification time (a delayed retry's is ahead).
  long pending = 0;
  double oldest_s = 0;
  for (const auto& e : fs::directory_iterator(queuedir ? root + "/new" : root, ec)) {
    std::string name = e.path().filename().string();
    bool wanted = queuedir ? QueueDir::IsItemName(name) : SpoolDir::IsCandidateName(name);
    if (!wanted || !e.is_regular_file(ec)) continue;
    ++pending;
    struct stat st;
    if (stat(e.path().c_str(), &st) == 0) {
      double age = now / 1e6 - (st.st_mtim.tv_sec + st.st_mtim.tv_nsec / 1e9);
      oldest_s = std::max(oldest_s, age);
    }
  }
  if (ec) return Unknown("cannot read " + root + ": " + ec.message());
  long dead = 0;
  for (const auto& e : fs::directory_iterator(root + (queuedir ? "/dead" : "/failed"), ec)) {
    std::string name = e.path().filename().string();
    const std::string sidecar = queuedir ? ".log" : ".error.json";
    if (name.size() > sidecar.size() &&
        name.compare(name.size() - sidecar.size(), sidecar.size(), sidecar) == 0) {
      continue;
    }
    if (name[0] != '.') ++dead;
  }
  long in_cur = 0;
  if (queuedir) {
    for (const auto& e : fs::directory_iterator(root + "/cur", ec)) {
      in_cur += QueueDir::IsItemName(e.path().filename().string());
    }
  }

  // In progress and the heartbeat come from the store (without creating one).
  std::string database = db;
  if (database.empty()) {
    database = queuedir ? "sqlite:" + root + "/sluice.db" : "sqlite:sluice.db";
  }
  if (database.rfind("sqlite:", 0) == 0 && !fs::exists(database.substr(7), ec)) {
    return Unknown("no database " + database.substr(7) + " (has the daemon run here?)");
  }
  auto store = OpenExistingStore(database, f.store);
  if (!store.ok()) {
    return Unknown("cannot open " + DescribeStore(database, f.store) + ": " +
                   store.status().message());
  }
  auto counts = (*store)->CountJobsBySpool();
  if (!counts.ok()) return Unknown("cannot read jobs: " + counts.status().message());
  long running = 0;
  if (queuedir) {
    running = in_cur;  // claimed items are in cur/, not in new/
  } else {
    if (auto it = counts->find({root, "running"}); it != counts->end()) running = it->second;
    pending = std::max(0L, pending - running);  // running files are still in the root
  }
  auto beat = (*store)->GetValue(kHeartbeatNs, root);
  if (!beat.ok()) return Unknown("cannot read the heartbeat: " + beat.status().message());
  double beat_age = -1;
  if (beat->has_value()) beat_age = (now - std::strtoll((*beat)->c_str(), nullptr, 10)) / 1e6;

  Level level = kOk;
  std::vector<std::string> why;
  auto raise = [&](Level l, const std::string& reason) {
    level = std::max(level, l);
    why.push_back(reason);
  };
  if (dead > 0) raise(kCritical, std::to_string(dead) + " failed");
  if (pending >= f.crit_pending) {
    raise(kCritical, std::to_string(pending) + " pending >= " + std::to_string(f.crit_pending));
  } else if (pending >= f.warn_pending) {
    raise(kWarning, std::to_string(pending) + " pending >= " + std::to_string(f.warn_pending));
  }
  if (running >= f.crit_cur) {
    raise(kCritical, std::to_string(running) + " in progress >= " + std::to_string(f.crit_cur));
  } else if (running >= f.warn_cur) {
    raise(kWarning, std::to_string(running) + " in progress >= " + std::to_string(f.warn_cur));
  }
  if (pending > 0 && oldest_s > f.max_age_s) {
    raise(kWarning, "oldest pending " + std::to_string(static_cast<long>(oldest_s)) + "s > " +
                        std::to_string(static_cast<long>(f.max_age_s)) + "s");
  }
  if (beat_age < 0) {
    raise(kCritical, "no daemon heartbeat");
  } else if (beat_age > f.heartbeat_age_s) {
    raise(kCritical,
          "last daemon heartbeat " + std::to_string(static_cast<long>(beat_age)) + "s ago");
  }
  std::string summary;
  for (const std::string& w : why) summary += (summary.empty() ? "" : ", ") + w;
  if (summary.empty()) {
    summary =
        std::to_string(pending) + " pending, " + std::to_string(running) + " in progress, 0 failed";
  }
  char perf[512];
  std::snprintf(perf, sizeof(perf),
                "%1$spending=%2$ld;%3$ld;%4$ld;0 %1$sin_progress=%5$ld;%6$ld;%7$ld;0 "
                "%1$sfailed=%8$ld;;1;0 %1$soldest_pending=%9$.0fs;%10$.0f;;0 "
                "%1$sheartbeat_age=%11$.0fs;;%12$.0f;0",
                prefix.c_str(), pending, f.warn_pending, f.crit_pending, running, f.warn_cur,
                f.crit_cur, dead, pending > 0 ? oldest_s : 0.0, f.max_age_s,
                beat_age < 0 ? 0.0 : beat_age, f.heartbeat_age_s);
  return Verdict{level, root + ": " + summary, perf};
}

// check_queuedir.py's check_queuedir(): its counts (every entry of new/ and cur/, what in
// dead/ is not a .log), its thresholds, its messages.
Verdict CheckQueuedir(const CheckFlags& f, const std::string& dir, std::string* perf) {
  namespace fs = std::filesystem;
  double now = Clock::Real()->NowMicros() / 1e6;
  Level level = kOk;
  std::vector<std::string> msgs;
  auto list = [&](const std::string& sub, bool* ok) {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir + "/" + sub, ec)) {
      names.push_back(e.path().filename().string());
    }
    *ok = !ec;
    return names;
  };
  // The oldest modification time, in seconds (files that went away meanwhile are skipped).
  auto oldest = [&](const std::string& sub, const std::vector<std::string>& names) {
    double t = -1;
    for (const std::string& n : names) {
      struct stat st;
      if (::stat((dir + "/" + sub + "/" + n).c_str(), &st) != 0) continue;
      double m = st.st_mtim.tv_sec + st.st_mtim.tv_nsec / 1e9;
      t = t < 0 ? m : std::min(t, m);
    }
    return t;
  };
  bool ok_dead, ok_new, ok_cur;
  long dead = 0;
  for (const std::string& n : list("dead", &ok_dead)) {
    dead += !(n.size() >= 4 && n.compare(n.size() - 4, 4, ".log") == 0);
  }
  std::vector<std::string> fresh = list("new", &ok_new), cur = list("cur", &ok_cur);
  if (!ok_dead || !ok_new || !ok_cur) return Unknown("Unhandled exception: cannot read " + dir);
  if (dead > 0) {
    level = kCritical;
    msgs.push_back(std::to_string(dead) + (dead == 1 ? " dead item" : " dead items"));
  }
  long ages[2] = {0, 0};
  const std::vector<std::string>* lists[2] = {&fresh, &cur};
  const char* subs[2] = {"new", "cur"};
  long warn[2] = {f.warn_pending, f.warn_cur}, crit[2] = {f.crit_pending, f.crit_cur};
  for (int i = 0; i < 2; ++i) {
    long n = static_cast<long>(lists[i]->size());
    if (n == 0) continue;
    double first = oldest(subs[i], *lists[i]);
    if (n >= crit[i]) {
      level = kCritical;
      msgs.push_back(std::to_string(n) + " " + subs[i] + " items");
    } else if (n >= warn[i]) {
      level = std::max(level, kWarning);
      msgs.push_back(std::to_string(n) + " " + subs[i] + " items");
    }
    ages[i] = first < 0 ? 0 : static_cast<long>(now - first);
    if (ages[i] > f.max_age_s) {
      level = std::max(level, kWarning);
      msgs.push_back("oldest item is " + std::to_string(ages[i]) + "s old");
    }
  }
  std::string text;
  for (const std::string& m : msgs) text += (text.empty() ? "" : ";") + m;
  char buf[256];
  std::snprintf(buf, sizeof(buf), "new=%zu;%ld;%ld;0 cur=%zu;%ld;%ld;0 dead=%ld;;1;0", fresh.size(),
                f.warn_pending, f.crit_pending, cur.size(), f.warn_cur, f.crit_cur, dead);
  *perf += (perf->empty() ? "" : " ") + std::string(buf);
  return Verdict{level, text, ""};
}

// check_queuedir.py's main(): the worst level, every message joined by ";" or "Ok".
int RunQueuedirCheck(const CheckFlags& f) {
  Level level = kOk;
  std::string text, perf;
  for (const std::string& dir : f.queuedirs) {
    Verdict v = CheckQueuedir(f, dir, &perf);
    level = std::max(level, v.level);
    if (!v.summary.empty()) text += (text.empty() ? "" : ";") + v.summary;
    if (f.heartbeat_given) {
      // Beyond check_queuedir.py: the daemon's heartbeat, when asked for.
      Verdict daemon = CheckOne(f, dir, f.database, "");
      if (daemon.summary.find("heartbeat") != std::string::npos && daemon.level == kCritical) {
        level = kCritical;
        text += (text.empty() ? "" : ";") + std::string("no recent daemon heartbeat");
      }
    }
  }
  if (level == kUnknown && text.rfind("Unhandled", 0) != 0) text = "Unhandled exception; " + text;
  std::printf("%s%s%s\n", text.empty() ? "Ok" : text.c_str(), f.perfdata ? " | " : "",
              f.perfdata ? perf.c_str() : "");
  return level;
}

// The cluster's streams: every queue's entries, pending ones and their idle time, dead letters.
Verdict CheckBroker(const CheckFlags& f) {
  RedisBrokerOptions o;
  o.url = f.broker;
  o.prefix = f.broker_prefix;
  o.observe = true;  // reads only: the shard count is the cluster's
  o.consumer = "check";
  o.timeout_ms = 5000;
  auto broker = RedisBroker::Open(o, Clock::Real());
  if (!broker.ok()) return Unknown("broker: " + broker.status().message());
  auto stats = (*broker)->Stats();
  if (!stats.ok()) return Unknown("broker: " + stats.status().message());
  int64_t entries = 0, pending = 0, oldest_ms = 0;
  for (const StreamStats& s : *stats) {
    entries += s.length;
    pending += s.pending;
    oldest_ms = std::max(oldest_ms, s.oldest_pending_ms);
  }
  int64_t dead = static_cast<int64_t>((*broker)->DeadCount());
  Verdict v;
  std::vector<std::string> why;
  if (dead > 0) {
    v.level = kCritical;
    why.push_back(std::to_string(dead) + " dead letter" + (dead == 1 ? "" : "s"));
  }
  if (oldest_ms / 1e3 > f.max_age_s) {
    v.level = std::max(v.level, kWarning);
    why.push_back("a job handed out " + std::to_string(oldest_ms / 1000) +
                  "s ago without renewal > " + std::to_string(static_cast<long>(f.max_age_s)) +
                  "s");
  }
  std::string summary;
  for (const std::string& w : why) summary += (summary.empty() ? "" : ", ") + w;
  if (summary.empty()) {
    summary = std::to_string(entries - pending) + " ready, " + std::to_string(pending) +
              " handed out, 0 dead letters";
  }
  v.summary = "broker " + (*broker)->server() + ": " + summary;
  char perf[256];
  std::snprintf(perf, sizeof(perf),
                "broker_ready=%lld;;;0 broker_pending=%lld;;;0 broker_dead=%lld;;1;0 "
                "broker_oldest_pending=%.0fs;%.0f;;0",
                static_cast<long long>(entries - pending), static_cast<long long>(pending),
                static_cast<long long>(dead), oldest_ms / 1e3, f.max_age_s);
  v.perf = perf;
  return v;
}

int RunCheck(const CheckFlags& f) {
  if (!f.queuedirs.empty()) return RunQueuedirCheck(f);
  std::vector<Verdict> verdicts;
  if (!f.broker.empty()) {
    verdicts.push_back(CheckBroker(f));
    if (f.spool_dir.empty() && f.spool_name.empty() && !f.all) return Print(verdicts);
  }
  if (f.spool_name.empty() && !f.all) {
    if (f.spool_dir.empty()) return Print({Unknown("give --spool-dir, or --spool NAME / --all")});
    verdicts.push_back(CheckOne(f, f.spool_dir, f.database, ""));
    return Print(verdicts);
  }
  if (f.config.empty()) return Print({Unknown("--spool and --all need --config FILE")});
  auto sections = ConfigSpoolArgs(f.config);
  if (!sections.ok()) return Print({Unknown(sections.status().message())});
  auto global = ConfigFileArgs(f.config);
  std::string database = f.database;
  for (const std::string& arg : global.ok() ? *global : std::vector<std::string>{}) {
    if (database.empty() && arg.rfind("--database=", 0) == 0) database = arg.substr(11);
  }
  for (const auto& [name, args] : *sections) {
    if (!f.all && name != f.spool_name) continue;
    std::string dir;
    for (const std::string& arg : args) {
      if (arg.rfind("--spool-dir=", 0) == 0) dir = arg.substr(12);
    }
    verdicts.push_back(CheckOne(f, dir, database, f.all ? name + "_" : ""));
    verdicts.back().summary = name + " " + verdicts.back().summary;
  }
  if (verdicts.empty()) return Print({Unknown("no spool " + f.spool_name + " in " + f.config)});
  return Print(verdicts);
}

}  // namespace sluice::cli
