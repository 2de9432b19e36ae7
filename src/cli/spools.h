// The spools one `sluice serve` runs: the one its flags describe, or the [spool.NAME]
// sections of its config file (each starting from the command line's flags). Each spool has
// its own directory, layout, handler, workers, retry and archive policy; they share the
// database (one job id sequence, one event stream).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cli/serve.h"
#include "engine/engine.h"
#include "engine/queuedir_runner.h"
#include "handlers/kcidb/storage.h"
#include "store/store.h"

namespace sluice::cli {

struct SpoolSpec {
  std::string name;
  ServeFlags flags;
};

Result<std::vector<SpoolSpec>> SpoolSpecs(const ServeFlags& flags);
// InvalidArgument when a spool's folder is one another spool moves files into (its
// archive/, failed/ or deferred/, anything in a queuedir), which would run them again.
Status CheckSpoolsApart(const std::vector<SpoolSpec>& specs);

// Whether `kind` names a kind of job (one MakeHandler makes).
bool IsJobKind(const std::string& kind);
// The handler of `flags.kind`.
Result<std::unique_ptr<Handler>> MakeHandler(ServeFlags& flags, Store* store,
                                             kcidb::ExcerptUploader* uploader);

struct RunningSpool {
  std::string name;
  std::string layout;
  std::unique_ptr<Handler> handler;
  std::unique_ptr<Engine> engine;          // layout "spool"
  std::unique_ptr<QueuedirRunner> runner;  // layout "queuedir"
  std::string root() const { return engine ? engine->spool_root() : runner->root(); }
};

class SpoolSet {
 public:
  SpoolSet(Store* store, EngineShared shared) : store_(store), shared_(shared) {}
  ~SpoolSet() { Stop(); }
  // Builds and starts every spool; on error, stops those started.
  Status Start(std::vector<SpoolSpec> specs, kcidb::ExcerptUploader* uploader);
  // Stop taking work (engines finish what they hold; runners let commands finish).
  void RequestStop();
  // Every engine is done (a burst drained) and there is no queuedir runner.
  bool Done() const;
  // OK while every spool can take work; else the first reason one cannot.
  Status Health() const;
  // Waits for the engines; the first error.
  Status Wait();
  void Stop();
  void Reload();

  const std::vector<std::unique_ptr<RunningSpool>>& spools() const { return spools_; }
  std::vector<const Engine*> engines() const;
  // The engine that runs jobs of `kind` (the first), or of job `id` (by its spool).
  Engine* ForKind(const std::string& kind) const;
  Result<Engine*> ForJob(int64_t id) const;
  // HTTP jobs are a cluster's (--broker): any engine answers for them (ForJob).
  void SetCluster(bool cluster) { cluster_ = cluster; }
  // The first spool's engine (null with queuedirs only).
  Engine* FirstEngine() const;

 private:
  Store* store_;
  EngineShared shared_;
  std::vector<std::unique_ptr<RunningSpool>> spools_;
  bool cluster_ = false;
};

}  // namespace sluice::cli
