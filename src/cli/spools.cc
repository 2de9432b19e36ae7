// SpoolSet: building the spools of a daemon from its flags or config sections, and finding
// the one a request is for.
#include "cli/spools.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <filesystem>

#include "cli/commands.h"
#include "core/json.h"
#include "core/spdlog.h"
#include "handlers/exec/exec_handler.h"
#include "handlers/kcidb/kcidb_handler.h"
#include "handlers/publish/publish_handler.h"

namespace sluice::cli {

namespace {

// pulse_publisher's retry policy for publish spools, unless flags say otherwise: the whole
// item again every 60 s, 5 retries.
void KindDefaults(ServeFlags* f) {
  if (f->kind != "publish") return;
  if (!f->given.count("retry-delay")) f->engine.retry_delay_s = 60;
  if (!f->given.count("retry-max-delay")) f->engine.retry_max_delay_s = f->engine.retry_delay_s;
  if (!f->given.count("max-attempts")) f->engine.max_attempts = 6;
  if (!f->given.count("max-retries")) f->max_retries = 5;
  if (!f->given.count("retry-time")) f->retry_time_s = 60;
}

}  // namespace

Result<std::vector<SpoolSpec>> SpoolSpecs(const ServeFlags& f) {
  std::vector<SpoolSpec> specs;
  if (f.spools_config.empty()) {
    if (f.engine.spool_dir.empty()) {
      return Status::InvalidArgument(
          "give --spool-dir, or a config file with [spool.NAME] "
          "sections");
    }
    SpoolSpec one{f.name, f};
    if (one.name.empty()) {
      one.name = std::filesystem::path(f.engine.spool_dir).lexically_normal().filename();
      if (one.name.empty()) one.name = "spool";
    }
    KindDefaults(&one.flags);
    specs.push_back(std::move(one));
    return specs;
  }
  auto sections = ConfigSpoolArgs(f.spools_config);
  if (!sections.ok()) return sections.status();
  for (auto& [name, args] : *sections) {
    SpoolSpec spec{name, f};
    spec.flags.name = name;
    spec.flags.engine.spool_dir.clear();
    CLI::App app{"spool " + name};
    app.allow_extras(false);
    app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    AddServeFlags(&app, &spec.flags, false);
    std::vector<std::string> argv = {"sluice"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<const char*> cargv;
    for (const std::string& a : argv) cargv.push_back(a.c_str());
    try {
      app.parse(static_cast<int>(cargv.size()), const_cast<char**>(cargv.data()));
    } catch (const CLI::ParseError& e) {
      return Status::InvalidArgument(f.spools_config + ": [spool." + name + "]: " + e.what());
    }
    if (spec.flags.engine.spool_dir.empty()) {
      return Status::InvalidArgument(f.spools_config + ": [spool." + name + "] needs 'dir'");
    }
    if (app.count("--max-reading-bytes") > 0) {
      return Status::InvalidArgument(f.spools_config + ": [spool." + name +
                                     "]: max_reading_bytes is one budget for every spool: give "
                                     "it outside the spool sections");
    }
    for (const char* flag :
         {"--event-max-age", "--event-max-count", "--job-max-age", "--failed-job-max-age"}) {
      if (app.count(flag) > 0) {
        std::string key = flag + 2;
        std::replace(key.begin(), key.end(), '-', '_');
        return Status::InvalidArgument(f.spools_config + ": [spool." + name + "]: " + key +
                                       " is the store's retention, for every spool: give it "
                                       "outside the spool sections");
      }
    }
    spec.flags.engine.archive = !spec.flags.no_archive;
    KindDefaults(&spec.flags);
    specs.push_back(std::move(spec));
  }
  if (specs.empty()) return Status::InvalidArgument(f.spools_config + ": no spool sections");
  SLUICE_RETURN_IF_ERROR(CheckSpoolsApart(specs));
  return specs;
}

Status CheckSpoolsApart(const std::vector<SpoolSpec>& specs) {
  namespace fs = std::filesystem;
  auto canonical = [](const std::string& dir) {
    std::error_code ec;
    fs::path p = fs::weakly_canonical(fs::absolute(dir, ec), ec);
    return ec ? fs::path(dir).lexically_normal() : p;
  };
  auto within = [](const fs::path& inner, const fs::path& outer) {
    auto [o, i] = std::mismatch(outer.begin(), outer.end(), inner.begin(), inner.end());
    return o == outer.end();
  };
  for (const SpoolSpec& a : specs) {
    fs::path root = canonical(a.flags.engine.spool_dir);
    // Where `a` puts files: another spool there would take them as its own new files.
    std::vector<fs::path> outlets;
    if (a.flags.layout == "queuedir") {
      outlets.push_back(root);
    } else {
      for (const char* sub : {"archive", "failed", "deferred"}) outlets.push_back(root / sub);
    }
    for (const SpoolSpec& b : specs) {
      if (&a == &b) continue;
      fs::path other = canonical(b.flags.engine.spool_dir);
      for (const fs::path& outlet : outlets) {
        if (!within(other, outlet)) continue;
        return Status::InvalidArgument(
            "the spool " + b.flags.engine.spool_dir + " [spool." + b.name + "] is inside " +
            outlet.string() + ", where the spool [spool." + a.name +
            "] puts its files: it would take them as new ones and run them again; give it a "
            "folder elsewhere");
      }
    }
  }
  return Status::Ok();
}

bool IsJobKind(const std::string& kind) {
  return kind == "kcidb" || kind == "exec" || kind == "publish";
}

Result<std::unique_ptr<Handler>> MakeHandler(ServeFlags& f, Store* store,
                                             kcidb::ExcerptUploader* uploader) {
  if (f.kind == "kcidb") {
    kcidb::KcidbOptions ko;
    ko.trees_file = f.trees_file;
    ko.uploader = uploader;
    auto kcidb = kcidb::KcidbHandler::Create(ko);
    if (!kcidb.ok()) return kcidb.status();
    return std::unique_ptr<Handler>(std::move(*kcidb));
  }
  if (f.kind == "exec") {
    if (!f.command_json.empty() && f.exec.command.empty()) {
      rapidjson::Document d;
      if (!ParseJson(f.command_json, &d).ok() || !d.IsArray() || d.Empty()) {
        return Status::InvalidArgument(
            "--command must be a JSON list like [\"/usr/bin/process\", \"{json}\", \"{dump}\"]");
      }
      for (auto& a : d.GetArray()) {
        if (!a.IsString()) return Status::InvalidArgument("--command: strings only");
        f.exec.command.emplace_back(a.GetString(), a.GetStringLength());
      }
    }
    return std::unique_ptr<Handler>(std::make_unique<ExecHandler>(f.exec));
  }
  if (f.kind == "publish") {
    if (const char* t = std::getenv("SLUICE_PUBLISH_TOKEN"); f.publish.token.empty() && t) {
      f.publish.token = t;
    }
    auto publish = PublishHandler::Create(f.publish, store);
    if (!publish.ok()) return publish.status();
    return std::unique_ptr<Handler>(std::move(*publish));
  }
  return Status::InvalidArgument("--kind '" + f.kind +
                                 "' is not a job kind (kcidb, exec or publish)");
}

Status SpoolSet::Start(std::vector<SpoolSpec> specs, kcidb::ExcerptUploader* uploader) {
  for (SpoolSpec& spec : specs) {
    auto s = std::make_unique<RunningSpool>();
    s->name = spec.name;
    s->layout = spec.flags.layout;
    auto handler = MakeHandler(spec.flags, store_, uploader);
    Status st = handler.status();
    if (st.ok()) {
      s->handler = std::move(*handler);
      if (s->layout == "queuedir") {
        if (spec.flags.engine.burst) {
          st = Status::InvalidArgument("--burst is for spools, not queuedirs");
        } else {
          QueuedirOptions qo;
          qo.dir = spec.flags.engine.spool_dir;
          qo.workers = spec.flags.engine.max_workers;
          qo.max_retries = spec.flags.max_retries;
          qo.retry_time_s = spec.flags.retry_time_s;
          qo.queue = spec.flags.engine.queue;
          qo.dir_lock = spec.flags.engine.spool_lock;
          s->runner = std::make_unique<QueuedirRunner>(qo, store_, s->handler.get(), Env::Default(),
                                                       Clock::Real(), shared_);
          st = s->runner->Start();
        }
      } else {
        // HTTP jobs go to the first engine of their kind (ForKind): that one recovers them.
        spec.flags.engine.takes_api_jobs = ForKind(std::string(s->handler->kind())) == nullptr;
        s->engine = std::make_unique<Engine>(spec.flags.engine, store_, s->handler.get(),
                                             Env::Default(), Clock::Real(), nullptr, shared_);
        st = s->engine->Start();
      }
    }
    if (!st.ok()) {
      Stop();
      return st.Annotate("spool " + spec.name);
    }
    spdlog::info("spool {}: {} {} ({}, {} workers)", s->name, s->layout, s->root(),
                 s->handler->kind(), spec.flags.engine.max_workers);
    spools_.push_back(std::move(s));
  }
  return Status::Ok();
}

void SpoolSet::RequestStop() {
  for (auto& s : spools_) {
    if (s->engine) s->engine->RequestStop();
  }
}

bool SpoolSet::Done() const {
  for (const auto& s : spools_) {
    if (s->runner || !s->engine->Done()) return false;
  }
  return true;
}

Status SpoolSet::Health() const {
  if (Done()) return Status::Unavailable("the daemon is stopping");
  for (const auto& s : spools_) {
    Status st = s->engine ? s->engine->Health() : s->runner->Health();
    if (!st.ok()) return st.Annotate("spool " + s->name);
  }
  return Status::Ok();
}

Status SpoolSet::Wait() {
  Status first;
  for (auto& s : spools_) {
    if (!s->engine) continue;
    Status st = s->engine->Wait();
    if (first.ok() && !st.ok()) first = st.Annotate("spool " + s->name);
  }
  return first;
}

void SpoolSet::Stop() {
  RequestStop();
  (void)Wait();
  for (auto& s : spools_) {
    if (s->runner) s->runner->Stop();
  }
}

void SpoolSet::Reload() {
  for (auto& s : spools_) {
    if (s->engine) (void)s->engine->Reload();
  }
}

std::vector<const Engine*> SpoolSet::engines() const {
  std::vector<const Engine*> out;
  for (const auto& s : spools_) {
    if (s->engine) out.push_back(s->engine.get());
  }
  return out;
}

Engine* SpoolSet::ForKind(const std::string& kind) const {
  for (const auto& s : spools_) {
    if (s->engine && s->engine->kind() == kind) return s->engine.get();
  }
  return nullptr;
}

Engine* SpoolSet::FirstEngine() const {
  for (const auto& s : spools_) {
    if (s->engine) return s->engine.get();
  }
  return nullptr;
}

Result<Engine*> SpoolSet::ForJob(int64_t id) const {
  auto job = store_->GetJob(id);
  if (!job.ok()) return job.status();
  // A cluster's HTTP jobs run on any process: any engine answers for them.
  if (job->spool.empty() && cluster_ && FirstEngine() != nullptr) return FirstEngine();
  for (const auto& s : spools_) {
    if (!s->engine) continue;
    if (job->spool.empty() ? s->engine->kind() == job->kind
                           : s->engine->spool_root() == job->spool) {
      return s->engine.get();
    }
  }
  return Status::FailedPrecondition("job " + std::to_string(id) +
                                    " belongs to no spool this daemon runs (" +
                                    (job->spool.empty() ? job->kind : job->spool) + ")");
}

}  // namespace sluice::cli
