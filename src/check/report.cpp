// render(): dispatch to the writers (report_*.cpp).
#include "phigate/check/report.hpp"
#include "report_impl.hpp"

namespace phigate::check {

bool parse_format(std::string_view name, Format& out) {
  if (name == "text")
    out = Format::Text;
  else if (name == "json")
    out = Format::Json;
  else if (name == "sarif")
    out = Format::Sarif;
  else if (name == "html")
    out = Format::Html;
  else if (name == "markdown" || name == "md")
    out = Format::Markdown;
  else
    return false;
  return true;
}

std::string render(Format format, const std::vector<Finding>& findings, const Evidence& evidence) {
  switch (format) {
    case Format::Text:
      return detail::render_text(findings, evidence);
    case Format::Json:
      return detail::render_json(findings, evidence);
    case Format::Sarif:
      return detail::render_sarif(findings, evidence);
    case Format::Html:
      return detail::render_doc(findings, evidence, /*html=*/true);
    case Format::Markdown:
      return detail::render_doc(findings, evidence, /*html=*/false);
  }
  return {};
}

}  // namespace phigate::check
