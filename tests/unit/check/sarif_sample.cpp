// check_sarif_sample OUTDIR: writes OUTDIR/findings.sarif (a finding of every rule of the table,
// findings of each severity, hostile names, a finding without file, files outside the working
// directory, lines 0 and >= 1) and OUTDIR/clean.sarif (no finding), for the ctest
// check_sarif_valid, which validates both with tests/sarif/validate_sarif.mjs (schema + GitHub
// code scanning's rules).
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "phigate/check/report.hpp"

namespace {

using namespace phigate::check;

constexpr RuleInfo kWarning{.id = "ZZW01",
                            .name = "SampleWarning",
                            .title = "Sample: a hardening gap",
                            .safeguard = Safeguard::Integrity,
                            .hipaa = "164.312(c)(1)",
                            .severity = Severity::Warning,
                            .remedy = "Harden it"};
constexpr RuleInfo kInfo{.id = "ZZI01",
                         .name = "SampleInfo",
                         .title = "Sample: not built yet",
                         .safeguard = Safeguard::Audit,
                         .hipaa = "164.312(b)",
                         .severity = Severity::Info,
                         .remedy = "Nothing to do yet",
                         .built_in = "Sample evidence"};

Location at(std::string file, int line, std::string resource, std::string field) {
  Location l;
  l.file = std::move(file);
  l.line = line;
  l.resource = std::move(resource);
  l.field = std::move(field);
  return l;
}

bool write(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) std::cerr << "check_sarif_sample: cannot write " << path << "\n";
  return static_cast<bool>(out);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: check_sarif_sample OUTDIR\n";
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);

  const std::string hostile = std::string("</script>\"'|`x` \n\r\x1b[0m NUL:") + std::string(1, '\0') +
                              "\xff\xc3\x28 \xE2\x80\xAE ../../etc/passwd %2e%2e/ #frag ?q";
  Evidence e;
  e.version = "0.1.0";
  e.time = 1796523900;
  e.config_file = "phigate.yaml";
  e.config_digest = std::string(64, 'a');
  e.manifests = {{"manifests/ingress.yaml", std::string(64, 'b')}};
  e.phi_hosts = {"records.example"};

  std::vector<Finding> findings;
  int line = 1;
  for (const auto& r : all_rules()) {
    findings.push_back(
        make_finding(r.info, "sample finding of " + std::string(r.info.id),
                     at("manifests/ingress.yaml", line++, "Ingress default/web", "metadata.annotations"),
                     "records.example"));
  }
  // Every severity, with and without line, file, resource.
  findings.push_back(
      make_finding(config_error_rule(), "config key", at("phigate.yaml", 3, "", "tls.min_version")));
  findings.push_back(
      make_finding(kWarning, "no line", at("manifests/ingress.yaml", 0, "Ingress default/web", "")));
  findings.push_back(
      make_finding(kInfo, "API source", at("", 0, "Ingress prod/api", "metadata.annotations")));
  findings.push_back(make_finding(kInfo, "nothing known", at("", 0, "", "")));
  // Hostile names: in a relative file, outside the working directory, absolute, under it.
  findings.push_back(
      make_finding(kWarning, hostile, at("sub dir/" + hostile + ".yaml", 9, hostile, hostile), hostile));
  findings.push_back(
      make_finding(config_error_rule(), hostile, at("../../" + hostile, 2, "Ingress " + hostile, "")));
  findings.push_back(make_finding(kInfo, hostile, at("/etc/phigate/" + hostile, 5, "", hostile)));
  findings.push_back(make_finding(
      kWarning, "absolute under the working directory",
      at((std::filesystem::current_path(ec) / "deploy" / ("a b#c?" + hostile)).string(), 4, "", "")));

  if (!write(dir / "findings.sarif", render(Format::Sarif, findings, e))) return 1;
  if (!write(dir / "clean.sarif", render(Format::Sarif, {}, e))) return 1;
  std::cout << "wrote " << (dir / "findings.sarif").string() << " (" << findings.size() << " results) and "
            << (dir / "clean.sarif").string() << "\n";
  return 0;
}
