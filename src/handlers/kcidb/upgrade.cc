// The major steps 1→2→3→4→5 of kcidb-io, applied to a rapidjson document in place.
#include "handlers/kcidb/upgrade.h"

#include <string>
#include <vector>

namespace sluice::kcidb {
namespace {

using rapidjson::Value;
using Alloc = rapidjson::Document::AllocatorType;

std::string Str(const Value& obj, const char* key) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || !it->value.IsString()) return {};
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

void SetStr(Value& obj, const char* key, const std::string& s, Alloc& a) {
  Value v(s.data(), static_cast<rapidjson::SizeType>(s.size()), a);
  auto it = obj.FindMember(key);
  if (it != obj.MemberEnd()) {
    it->value = v;
  } else {
    obj.AddMember(Value(key, a), v, a);
  }
}

void Rename(Value& obj, const char* from, const char* to, Alloc& a) {
  auto it = obj.FindMember(from);
  if (it == obj.MemberEnd()) return;
  Value v(std::move(it->value), a);
  obj.RemoveMember(from);
  obj.RemoveMember(to);
  obj.AddMember(Value(to, a), v, a);
}

Value* List(rapidjson::Document* doc, const char* name) {
  auto it = doc->FindMember(name);
  if (it == doc->MemberEnd() || !it->value.IsArray()) return nullptr;
  return &it->value;
}

template <typename F>
void Each(rapidjson::Document* doc, const char* name, F f) {
  if (Value* list = List(doc, name)) {
    for (auto& obj : list->GetArray()) {
      if (obj.IsObject()) f(obj);
    }
  }
}

void SetVersion(rapidjson::Document* doc, int major, int minor) {
  Alloc& a = doc->GetAllocator();
  Value v(rapidjson::kObjectType);
  v.AddMember("major", major, a);
  v.AddMember("minor", minor, a);
  doc->RemoveMember("version");
  doc->AddMember("version", v, a);
}

// 1 → 2: origin + origin_id pairs merge into "origin:id"; '/' in resource names becomes '_'.
void V1To2(rapidjson::Document* doc) {
  Alloc& a = doc->GetAllocator();
  auto merge = [&](Value& obj, const char* id, const char* origin, const char* origin_id) {
    SetStr(obj, id, Str(obj, origin) + ":" + Str(obj, origin_id), a);
    obj.RemoveMember(origin);
    obj.RemoveMember(origin_id);
  };
  auto fix_names = [&](Value& obj, const char* prop) {
    auto it = obj.FindMember(prop);
    if (it == obj.MemberEnd() || !it->value.IsArray()) return;
    for (auto& r : it->value.GetArray()) {
      if (!r.IsObject()) continue;
      std::string name = Str(r, "name");
      for (char& c : name) c = c == '/' ? '_' : c;
      SetStr(r, "name", name, a);
    }
  };
  Each(doc, "revisions", [&](Value& o) {
    merge(o, "id", "origin", "origin_id");
    fix_names(o, "patch_mboxes");
  });
  Each(doc, "builds", [&](Value& o) {
    merge(o, "id", "origin", "origin_id");
    merge(o, "revision_id", "revision_origin", "revision_origin_id");
    fix_names(o, "input_files");
    fix_names(o, "output_files");
  });
  Each(doc, "tests", [&](Value& o) {
    merge(o, "id", "origin", "origin_id");
    merge(o, "build_id", "build_origin", "build_origin_id");
    fix_names(o, "output_files");
  });
  SetVersion(doc, 2, 0);
}

// 2 → 3: "origin" split out of ids again; revision ids lose their origin; commit renames.
void V2To3(rapidjson::Document* doc) {
  Alloc& a = doc->GetAllocator();
  auto origin_of = [](const std::string& id) { return id.substr(0, id.find(':')); };
  auto without_origin = [](const std::string& id) {
    size_t colon = id.find(':');
    return colon == std::string::npos ? id : id.substr(colon + 1);
  };
  for (const char* list : {"revisions", "builds", "tests"}) {
    Each(doc, list, [&](Value& o) { SetStr(o, "origin", origin_of(Str(o, "id")), a); });
  }
  Each(doc, "revisions", [&](Value& o) {
    SetStr(o, "id", without_origin(Str(o, "id")), a);
    Rename(o, "git_repository_commit_hash", "git_commit_hash", a);
    Rename(o, "git_repository_commit_name", "git_commit_name", a);
  });
  Each(doc, "builds",
       [&](Value& o) { SetStr(o, "revision_id", without_origin(Str(o, "revision_id")), a); });
  SetVersion(doc, 3, 0);
}

// 3 → 4: revisions become checkouts with ids "_:origin:revision"; description → comment.
void V3To4(rapidjson::Document* doc) {
  Alloc& a = doc->GetAllocator();
  Each(doc, "revisions", [&](Value& o) {
    std::string id = "_:" + Str(o, "origin") + ":" + Str(o, "id");
    SetStr(o, "id", id, a);
    Rename(o, "patch_mboxes", "patchset_files", a);
    size_t plus = id.find('+');
    std::string hash;
    if (plus != std::string::npos) {
      size_t next = id.find('+', plus + 1);
      hash = id.substr(plus + 1, next == std::string::npos ? std::string::npos : next - plus - 1);
    }
    SetStr(o, "patchset_hash", hash, a);
    Rename(o, "discovery_time", "start_time", a);
    Rename(o, "description", "comment", a);
    o.RemoveMember("publishing_time");
  });
  if (doc->HasMember("revisions")) Rename(*doc, "revisions", "checkouts", a);
  Each(doc, "builds", [&](Value& o) {
    SetStr(o, "checkout_id", "_:" + Str(o, "origin") + ":" + Str(o, "revision_id"), a);
    o.RemoveMember("revision_id");
    Rename(o, "description", "comment", a);
  });
  Each(doc, "tests", [&](Value& o) {
    Rename(o, "description", "comment", a);
    auto env = o.FindMember("environment");
    if (env != o.MemberEnd() && env->value.IsObject()) {
      Rename(env->value, "description", "comment", a);
    }
  });
  SetVersion(doc, 4, 0);
}

// 4 → 5: build "valid" becomes "status"; waived tests become incidents of issue "_:waived";
// checkout contacts and issue build_valid/test_status are dropped.
void V4To5(rapidjson::Document* doc) {
  Alloc& a = doc->GetAllocator();
  Each(doc, "checkouts", [&](Value& o) { o.RemoveMember("contacts"); });
  Each(doc, "builds", [&](Value& o) {
    auto it = o.FindMember("valid");
    if (it == o.MemberEnd()) return;
    bool valid = it->value.IsBool() && it->value.GetBool();
    o.RemoveMember("valid");
    SetStr(o, "status", valid ? "PASS" : "FAIL", a);
  });
  std::vector<std::string> waived;
  Each(doc, "tests", [&](Value& o) {
    auto it = o.FindMember("waived");
    if (it == o.MemberEnd()) return;
    bool w = it->value.IsBool() && it->value.GetBool();
    o.RemoveMember("waived");
    if (w) waived.push_back(Str(o, "id"));
  });
  Each(doc, "issues", [&](Value& o) {
    o.RemoveMember("build_valid");
    o.RemoveMember("test_status");
  });
  if (!waived.empty()) {
    constexpr int kWaivedVersion = 1;
    if (!doc->HasMember("issues")) doc->AddMember("issues", Value(rapidjson::kArrayType), a);
    if (!doc->HasMember("incidents")) {
      doc->AddMember("incidents", Value(rapidjson::kArrayType), a);
    }
    Value issue(rapidjson::kObjectType);
    issue.AddMember("id", "_:waived", a);
    issue.AddMember("origin", "_", a);
    issue.AddMember("version", kWaivedVersion, a);
    issue.AddMember("comment", "Test waived as unreliable", a);
    (*doc)["issues"].PushBack(issue, a);
    for (const std::string& test_id : waived) {
      Value inc(rapidjson::kObjectType);
      SetStr(inc, "id", "_:waived:" + std::to_string(kWaivedVersion) + ":" + test_id, a);
      inc.AddMember("origin", "_", a);
      inc.AddMember("issue_id", "_:waived", a);
      inc.AddMember("issue_version", kWaivedVersion, a);
      SetStr(inc, "test_id", test_id, a);
      inc.AddMember("present", true, a);
      (*doc)["incidents"].PushBack(inc, a);
    }
  }
  SetVersion(doc, 5, 0);
}

}  // namespace

Status UpgradeToLatest(rapidjson::Document* doc, Version from) {
  if (!doc->IsObject()) return Status::FailedPrecondition("the submission is not an object");
  if (from.major < 1 || from.major > kLatest.major) {
    return Status::FailedPrecondition("cannot upgrade from version " + from.ToString());
  }
  if (from.major <= 1) V1To2(doc);
  if (from.major <= 2) V2To3(doc);
  if (from.major <= 3) V3To4(doc);
  if (from.major <= 4) V4To5(doc);
  SetVersion(doc, kLatest.major, kLatest.minor);
  return Status::Ok();
}

}  // namespace sluice::kcidb
