# Sourced by scripts/demo and scripts/test: installs what is missing, then
# leaves a virtualenv with pgtally (editable) and its test dependencies in .venv.
# As root on Debian/Ubuntu it installs PostgreSQL 15, pgTAP, pg_cron, plpgsql_check, libfaketime, Chromium
# and poppler-utils (report tests: browser, PDF text and pages) with apt;
# otherwise it says what to install.

pgtally_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
apt_packages=(postgresql-15 postgresql-15-pgtap postgresql-15-cron postgresql-15-plpgsql-check faketime python3-venv chromium poppler-utils)

missing_apt() {
  local p out=()
  for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || out+=("$p")
  done
  echo "${out[@]:-}"
}

if command -v dpkg-query >/dev/null 2>&1; then
  need="$(missing_apt)"
  if [ -n "$need" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "pgtally setup: installing $need" >&2
      apt-get update -qq >/dev/null
      # The Debian postgresql package starts a system cluster; pgtally never uses it.
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null
    else
      echo "pgtally setup: missing Debian packages: $need" >&2
      echo "  install them with: sudo apt-get install $need" >&2
      echo "  (or set DATABASE_URL to a PostgreSQL 15+ server that has pgTAP available)" >&2
    fi
  fi
fi

# Citus (the scale-out tests): installed from the build beside the checkout when one is there.
citus_install="$pgtally_root/../shared/citus/install.sh"
# That build links against PostgreSQL 15.20 (which exports have_createdb_privilege): an older 15.x the
# machine came with cannot load it, so the server is brought up to the archive's 15.x first.
if [ -f "$citus_install" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
   && pg_version="$(dpkg-query -W -f='${Version}' postgresql-15 2>/dev/null)" \
   && dpkg --compare-versions "$pg_version" lt 15.20; then
  echo "pgtally setup: PostgreSQL $pg_version is older than the Citus build needs (15.20); upgrading postgresql-15" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 postgresql-client-15 >/dev/null \
    || echo "pgtally setup: the upgrade failed; the Citus tests will fail to start Citus" >&2
fi
if [ -f "$citus_install" ] && [ "$(id -u)" = 0 ]; then
  citus_lib="$(pg_config --pkglibdir 2>/dev/null || echo /usr/lib/postgresql/15/lib)"
  if [ ! -f "$citus_lib/citus.so" ] && [ ! -f /usr/lib/postgresql/15/lib/citus.so ]; then
    echo "pgtally setup: installing Citus for the scale-out tests" >&2
    bash "$citus_install" >/dev/null || echo "pgtally setup: Citus install failed; the Citus tests will skip" >&2
  fi
fi

# PostgreSQL refuses to run as root; the throwaway server runs as 'postgres'.
if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
  useradd --system --no-create-home --shell /usr/sbin/nologin postgres
fi

venv="$pgtally_root/.venv"
stamp="$venv/.pgtally-installed"
want="$(sha256sum "$pgtally_root/pyproject.toml" | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "pgtally setup: installing Python dependencies into .venv" >&2
  "$venv/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$venv/bin/python" -m pip install -q -e "$pgtally_root[test]"
  echo "$want" > "$stamp"
fi
export PATH="$venv/bin:$PATH"
