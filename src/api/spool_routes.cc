// Router: priority by file name and promotion of deferred files (Socorro's priority jobs).
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "api/router.h"
#include "core/json.h"
#include "core/text.h"
#include "store/job_json.h"

namespace sluice::api {
namespace {

// {"name": "x.json"} -> the name; {"all": true} -> "" with *all set. *malformed: the body is
// not JSON at all (a 400, where JSON of the wrong shape is a 422).
Result<std::string> NameOf(const std::string& body, bool allow_all, bool* all, bool* malformed) {
  rapidjson::Document d;
  Status parsed = ParseJson(body, &d);
  *malformed = !parsed.ok();
  if (!parsed.ok() || !d.IsObject()) {
    return Status::InvalidArgument((parsed.ok() ? std::string() : parsed.message() + ": ") +
                                   "the body must be a JSON object like {\"name\": \"x.json\"}");
  }
  if (allow_all) {
    auto it = d.FindMember("all");
    if (it != d.MemberEnd() && it->value.IsBool() && it->value.GetBool()) {
      *all = true;
      return std::string();
    }
  }
  auto it = d.FindMember("name");
  if (it == d.MemberEnd() || !it->value.IsString() || it->value.GetStringLength() == 0) {
    return Status::InvalidArgument(allow_all ? "give {\"name\": FILE} or {\"all\": true}"
                                             : "give {\"name\": FILE}");
  }
  std::string name = JsonStr(it->value);
  SLUICE_RETURN_IF_ERROR(CheckName("'name'", name));
  if (name.find('/') != std::string::npos || name == "." || name == "..") {
    return Status::InvalidArgument("'name' must be a file name, not a path");
  }
  return name;
}

HttpResponse Unprocessable(const Status& st, bool malformed = false) {
  if (malformed) return HttpResponse::Error(400, "invalid_json", st.message());
  if (st.code() == Code::kInvalidArgument) {
    return HttpResponse::Error(422, "invalid_request", st.message());
  }
  return HttpResponse::FromStatus(st);
}

}  // namespace

HttpResponse Router::PriorityByName(const HttpRequest& r) const {
  if (!deps_.prioritize_name) return HttpResponse::Error(503, "unavailable", "no engine here");
  bool all = false, malformed = false;
  auto name = NameOf(r.body, false, &all, &malformed);
  if (!name.ok()) return Unprocessable(name.status(), malformed);
  auto done = deps_.prioritize_name(*name);
  if (!done.ok()) return Unprocessable(done.status());
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("action");
  w.String(done->second);
  w.Key("name");
  w.String(name->c_str());
  if (done->first.id != 0) {
    w.Key("job");
    WriteJobJson(done->first, &w);
  }
  w.EndObject();
  return HttpResponse::Json(done->first.id != 0 ? 200 : 202,
                            std::string(buf.GetString(), buf.GetSize()));
}

HttpResponse Router::Promote(const HttpRequest& r) const {
  if (!deps_.promote || !deps_.promote_all) {
    return HttpResponse::Error(503, "unavailable", "no engine here");
  }
  bool all = false, malformed = false;
  auto name = NameOf(r.body, true, &all, &malformed);
  if (!name.ok()) return Unprocessable(name.status(), malformed);
  std::vector<std::string> promoted;
  if (all) {
    promoted = deps_.promote_all();
  } else {
    auto job = deps_.promote(*name);
    if (!job.ok()) return Unprocessable(job.status());
    promoted.push_back(*name);
  }
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("promoted");
  w.StartArray();
  for (const std::string& n : promoted) w.String(n);
  w.EndArray();
  w.EndObject();
  return HttpResponse::Json(200, std::string(buf.GetString(), buf.GetSize()));
}

}  // namespace sluice::api
