// Shipped KCIDB schemas: lookup by version, compiled once, thread-safe.
#include "handlers/kcidb/schemas.h"

#include <array>
#include <memory>
#include <mutex>

#include "core/embedded.h"

namespace sluice::kcidb {
namespace {

constexpr std::array<Version, 13> kShipped = {{{1, 1},
                                               {2, 0},
                                               {3, 0},
                                               {4, 0},
                                               {4, 1},
                                               {4, 2},
                                               {4, 3},
                                               {4, 4},
                                               {4, 5},
                                               {5, 0},
                                               {5, 1},
                                               {5, 2},
                                               {5, 3}}};

std::string FileFor(Version v) {
  return "data/kcidb/schema/v" + std::to_string(v.major) + "_" + std::to_string(v.minor) + ".json";
}

struct Compiled {
  std::once_flag once;
  std::unique_ptr<JsonSchema> schema;
  Status status;
};

std::array<Compiled, kShipped.size()>& Cache() {
  static auto* cache = new std::array<Compiled, kShipped.size()>();
  return *cache;
}

}  // namespace

Result<Version> DeclaredVersion(const rapidjson::Value& doc) {
  if (!doc.IsObject()) return Status::FailedPrecondition("the submission is not a JSON object");
  auto it = doc.FindMember("version");
  if (it == doc.MemberEnd()) return Status::FailedPrecondition("the submission has no \"version\"");
  const rapidjson::Value& v = it->value;
  if (v.IsString()) {
    // As kcidb-io reads it: "M" or "M.N", a missing minor being 1 (only 1.x had strings).
    std::string s(v.GetString(), v.GetStringLength());
    size_t dot = s.find('.');
    auto number = [](const std::string& d, int* out) {
      if (d.empty() || d.size() > 9 || d.find_first_not_of("0123456789") != std::string::npos) {
        return false;
      }
      *out = std::stoi(d);
      return true;
    };
    int major = 0, minor = 1;
    if (!number(s.substr(0, dot), &major) ||
        (dot != std::string::npos && !number(s.substr(dot + 1), &minor))) {
      return Status::FailedPrecondition("unknown version string \"" + s + "\"");
    }
    if (major != 1) {
      return Status::FailedPrecondition("version \"" + s +
                                        "\": only 1.x versions are strings; give {\"major\": " +
                                        std::to_string(major) + ", \"minor\": N}");
    }
    return Version{major, minor};
  }
  if (v.IsObject()) {
    auto major = v.FindMember("major");
    if (major == v.MemberEnd() || !major->value.IsInt()) {
      return Status::FailedPrecondition("\"version.major\" is missing or not an integer");
    }
    int minor = 0;
    auto mi = v.FindMember("minor");
    if (mi != v.MemberEnd()) {
      if (!mi->value.IsInt()) {
        return Status::FailedPrecondition("\"version.minor\" is not an integer");
      }
      minor = mi->value.GetInt();
    }
    return Version{major->value.GetInt(), minor};
  }
  return Status::FailedPrecondition("\"version\" must be an object {major, minor}");
}

Result<const JsonSchema*> SchemaFor(Version v) {
  for (size_t i = 0; i < kShipped.size(); ++i) {
    // Exactly a version kcidb-io has, as its is_compatible() asks: 1.0 is not 1.1.
    if (kShipped[i].major != v.major || kShipped[i].minor != v.minor) continue;
    Compiled& c = Cache()[i];
    std::call_once(c.once, [&] {
      auto text = EmbeddedFile(FileFor(kShipped[i]));
      if (!text) {
        c.status = Status::Internal("schema " + kShipped[i].ToString() + " not embedded");
        return;
      }
      auto compiled = JsonSchema::Compile(*text);
      if (!compiled.ok()) {
        c.status = compiled.status();
        return;
      }
      c.schema = std::move(*compiled);
    });
    if (!c.status.ok()) return c.status;
    return c.schema.get();
  }
  return Status::FailedPrecondition("KCIDB schema version " + v.ToString() +
                                    " is not supported (1.0 through 5.3 are)");
}

std::string_view LatestSchemaText() {
  auto text = EmbeddedFile(FileFor(kLatest));
  return text ? *text : std::string_view();
}

}  // namespace sluice::kcidb
