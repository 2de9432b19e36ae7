// KcidbHandler: the ingestion pipeline of one submission.
#include "handlers/kcidb/kcidb_handler.h"

#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstring>

#include "core/clock.h"
#include "core/embedded.h"
#include "core/env.h"
#include "core/json.h"
#include "handlers/kcidb/labs.h"
#include "handlers/kcidb/schemas.h"
#include "handlers/kcidb/storage.h"
#include "handlers/kcidb/upgrade.h"

namespace sluice::kcidb {
namespace {

Status Fail(HandlerOutput* out, Status status, std::string code, std::string detail = "") {
  out->error_code = std::move(code);
  out->error_detail = std::move(detail);
  return status;
}

}  // namespace

Result<TreeMap> LoadTrees(const std::string& path) {
  if (path.empty()) return TreeMap::Default();
  std::string text;
  Status st = ReadConfigFile(path, 16 << 20, &text);
  if (!st.ok()) return st.Annotate("cannot read the trees file");
  auto map = TreeMap::Parse(text);
  if (!map.ok()) return map.status().Annotate(path);
  return map;
}

Result<std::unique_ptr<KcidbHandler>> KcidbHandler::Create(const KcidbOptions& options) {
  auto tables = Tables::FromSchema(LatestSchemaText());
  if (!tables.ok()) return tables.status();
  // On PostgreSQL the tables are the KernelCI dashboard's: its names and types, created as
  // its schema file creates them when the dashboard has not made them already.
  auto ddl = EmbeddedFile("data/kcidb/dashboard_schema.sql");
  if (!ddl) return Status::Internal("the dashboard schema is not embedded");
  tables->SetPostgresDdl(std::string(*ddl));
  auto trees = LoadTrees(options.trees_file);
  if (!trees.ok()) return trees.status();
  // Compile the latest schema now, so a broken build fails at start, not on the first file.
  auto latest = SchemaFor(kLatest);
  if (!latest.ok()) return latest.status();
  std::unique_ptr<KcidbHandler> h(new KcidbHandler(options, std::move(*tables)));
  h->trees_ = std::make_shared<const TreeMap>(std::move(*trees));
  return h;
}

std::shared_ptr<const TreeMap> KcidbHandler::trees() const {
  std::lock_guard<std::mutex> lock(trees_mu_);
  return trees_;
}

Status KcidbHandler::Reload() {
  auto trees = LoadTrees(options_.trees_file);
  if (!trees.ok()) return trees.status();
  std::lock_guard<std::mutex> lock(trees_mu_);
  trees_ = std::make_shared<const TreeMap>(std::move(*trees));
  return Status::Ok();
}

Status KcidbHandler::Run(const HandlerContext& ctx, HandlerOutput* out) {
  if (ctx.payload != nullptr) {
    std::string text = *ctx.payload;
    out->bytes = text.size();
    return Process(&text, ctx.clock->NowMicros(), out);
  }
  std::string text;
  FileInfo info;
  Status st = ctx.env->ReadFile(ctx.path, ctx.max_file_bytes, &text, &info);
  if (!st.ok()) return Fail(out, st, FileErrorCode(st));
  out->bytes = text.size();
  return Process(&text, ctx.clock->NowMicros(), out);
}

Status KcidbHandler::Process(std::string* text, int64_t now_micros, HandlerOutput* out) {
  // Parsed in place (no copy of the strings), depth-limited as every untrusted document is.
  rapidjson::Document doc;
  JsonParseError where;
  Status parsed = ParseJsonInsitu(text, &doc, options_.max_depth, &where);
  if (!parsed.ok()) {
    return Fail(out, parsed, where.too_deep ? "too_deep" : "invalid_json",
                "{\"offset\":" + std::to_string(where.offset) + "}");
  }
  auto version = DeclaredVersion(doc);
  if (!version.ok()) {
    return Fail(out, Status::InvalidArgument(version.status().message()), "unsupported_version");
  }
  auto schema = SchemaFor(*version);
  if (!schema.ok()) {
    return Fail(out, Status::InvalidArgument(schema.status().message()), "unsupported_version");
  }
  SchemaError err;
  if (!(*schema)->Validate(doc, &err)) {
    return Fail(out,
                Status::InvalidArgument("schema " + version->ToString() + " violated at " +
                                        err.instance_path + ": " + err.message),
                "schema_violation",
                "{\"version\":" + JsonQuote(version->ToString()) +
                    ",\"instance_path\":" + JsonQuote(err.instance_path) +
                    ",\"schema_path\":" + JsonQuote(err.schema_path) + "}");
  }
  bool upgraded = version->major != kLatest.major || version->minor != kLatest.minor;
  if (upgraded) {
    Status st = UpgradeToLatest(&doc, *version);
    auto latest = SchemaFor(kLatest);
    if (st.ok() && !latest.ok()) st = latest.status();
    if (st.ok() && !(*latest)->Validate(doc, &err)) {
      st = Status::InvalidArgument("after upgrade from " + version->ToString() + " to " +
                                   kLatest.ToString() + ", " + err.instance_path + ": " +
                                   err.message);
    }
    if (!st.ok()) {
      return Fail(out, Status::InvalidArgument(st.message()), "upgrade_impossible",
                  "{\"version\":" + JsonQuote(version->ToString()) +
                      ",\"instance_path\":" + JsonQuote(err.instance_path) +
                      ",\"schema_path\":" + JsonQuote(err.schema_path) + "}");
    }
  }
  StandardizeLabs(&doc);
  if (options_.uploader != nullptr) {
    Status st = options_.uploader->OffloadExcerpts(&doc);
    if (!st.ok()) return Fail(out, st, "storage_error");
  }

  std::shared_ptr<const TreeMap> trees = this->trees();
  std::string now = FormatTime(now_micros);
  std::string summary = "{\"version\":" + JsonQuote(version->ToString()) +
                        ",\"upgraded\":" + (upgraded ? "true" : "false");
  for (size_t t = 0; t < tables_.lists().size(); ++t) {
    const std::string& list = tables_.lists()[t];
    auto it = doc.FindMember(list.c_str());
    size_t n = 0;
    if (it != doc.MemberEnd() && it->value.IsArray()) {
      int table = static_cast<int>(t);
      int ts_col = tables_.ColumnIndex(table, "_timestamp");
      int url_col = list == "checkouts" ? tables_.ColumnIndex(table, "git_repository_url") : -1;
      int tree_col = list == "checkouts" ? tables_.ColumnIndex(table, "tree_name") : -1;
      for (auto& obj : it->value.GetArray()) {
        ObjectRow row = tables_.ToRow(table, obj);
        if (ts_col >= 0 && std::holds_alternative<std::monostate>(row.values[ts_col])) {
          row.values[ts_col] = now;
        }
        if (url_col >= 0 && tree_col >= 0) {
          if (auto* url = std::get_if<std::string>(&row.values[url_col])) {
            std::string_view name = trees->NameFor(*url);
            if (!name.empty()) row.values[tree_col] = std::string(name);
          }
        }
        out->rows.push_back(std::move(row));
        ++n;
      }
    }
    out->objects += n;
    summary += ",\"" + list + "\":" + std::to_string(n);
  }
  out->summary = summary + "}";
  return Status::Ok();
}

}  // namespace sluice::kcidb
