// KcidbHandler: the ingestion pipeline of one submission.
#include "handlers/kcidb/kcidb_handler.h"

#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "core/clock.h"
#include "handlers/kcidb/labs.h"
#include "handlers/kcidb/schemas.h"
#include "handlers/kcidb/storage.h"
#include "handlers/kcidb/upgrade.h"

namespace sluice::kcidb {
namespace {

// Iterative: hostile nesting cannot overflow the stack. Validating UTF-8 and refusing trailing
// data, as Python's json module (the reference) does.
constexpr unsigned kParseFlags =
    rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag;

// Depth of the deepest value, without recursion (documents may be hostile).
size_t Depth(const rapidjson::Value& root, size_t limit) {
  std::vector<std::pair<const rapidjson::Value*, size_t>> stack{{&root, 1}};
  size_t max = 0;
  while (!stack.empty()) {
    auto [v, d] = stack.back();
    stack.pop_back();
    max = std::max(max, d);
    if (max > limit) return max;
    if (v->IsObject()) {
      for (auto& m : v->GetObject()) stack.emplace_back(&m.value, d + 1);
    } else if (v->IsArray()) {
      for (auto& e : v->GetArray()) stack.emplace_back(&e, d + 1);
    }
  }
  return max;
}

std::string JsonString(std::string_view s) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  return std::string(buf.GetString(), buf.GetSize());
}

Status Fail(HandlerOutput* out, Status status, std::string code, std::string detail = "") {
  out->error_code = std::move(code);
  out->error_detail = std::move(detail);
  return status;
}

}  // namespace

Result<TreeMap> LoadTrees(const std::string& path) {
  if (path.empty()) return TreeMap::Default();
  std::ifstream in(path);
  if (!in) return Status::NotFound("cannot read trees file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  auto map = TreeMap::Parse(ss.str());
  if (!map.ok()) return map.status().Annotate(path);
  return map;
}

Result<std::unique_ptr<KcidbHandler>> KcidbHandler::Create(const KcidbOptions& options) {
  auto tables = Tables::FromSchema(LatestSchemaText());
  if (!tables.ok()) return tables.status();
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
  if (!st.ok()) {
    if (st.code() == Code::kInvalidArgument) return Fail(out, st, "unreadable_file");
    if (st.IsNotFound()) return Fail(out, st, "file_vanished");
    return Fail(out, st, "read_error");
  }
  out->bytes = text.size();
  return Process(&text, ctx.clock->NowMicros(), out);
}

Status KcidbHandler::Process(std::string* text, int64_t now_micros, HandlerOutput* out) {
  // JSON never holds a raw NUL byte (in strings it must be escaped); parsing in place would
  // take one for the end of the text.
  if (const void* nul = std::memchr(text->data(), 0, text->size())) {
    size_t off = static_cast<const char*>(nul) - text->data();
    return Fail(
        out, Status::InvalidArgument("not valid JSON: a NUL byte at byte " + std::to_string(off)),
        "invalid_json", "{\"offset\":" + std::to_string(off) + "}");
  }
  rapidjson::Document doc;
  text->push_back('\0');
  doc.ParseInsitu<kParseFlags>(text->data());
  if (doc.HasParseError()) {
    size_t off = doc.GetErrorOffset();
    return Fail(out,
                Status::InvalidArgument(std::string("not valid JSON: ") +
                                        rapidjson::GetParseError_En(doc.GetParseError()) +
                                        " at byte " + std::to_string(off)),
                "invalid_json", "{\"offset\":" + std::to_string(off) + "}");
  }
  if (Depth(doc, options_.max_depth) > options_.max_depth) {
    return Fail(out,
                Status::InvalidArgument("JSON nested deeper than " +
                                        std::to_string(options_.max_depth) + " levels"),
                "too_deep");
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
                "{\"version\":" + JsonString(version->ToString()) +
                    ",\"instance_path\":" + JsonString(err.instance_path) +
                    ",\"schema_path\":" + JsonString(err.schema_path) + "}");
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
                  "{\"version\":" + JsonString(version->ToString()) +
                      ",\"instance_path\":" + JsonString(err.instance_path) +
                      ",\"schema_path\":" + JsonString(err.schema_path) + "}");
    }
  }
  StandardizeLabs(&doc);
  if (options_.uploader != nullptr) {
    Status st = options_.uploader->OffloadExcerpts(&doc);
    if (!st.ok()) return Fail(out, st, "storage_error");
  }

  std::shared_ptr<const TreeMap> trees = this->trees();
  std::string now = FormatTime(now_micros);
  std::string summary = "{\"version\":" + JsonString(version->ToString()) +
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
