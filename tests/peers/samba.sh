#!/usr/bin/env bash
# Samba 4 Active Directory domain controllers on loopback addresses, for deskgate's tests.
#
#   tests/peers/samba.sh start NAME IP   start DC NAME on IP (e.g. dc1 127.0.0.2)
#   tests/peers/samba.sh stop NAME       stop it
#   tests/peers/samba.sh status          list the DCs and whether they run
#
# Realm CORP.EXAMPLE.COM, NetBIOS domain CORP, base DC=corp,DC=example,DC=com.
# The first start provisions a domain into .peers/samba-template (about 10 s) and seeds it;
# every start copies that template, so all DCs are the same domain with the same users and
# objectGUIDs, each on its own address, without replication between them.
#
# Seeded accounts (password "Passw0rd-<name>" unless said otherwise):
#   svc-deskgate  service account, password "Svc-Passw0rd!"
#   alice         in "Helpdesk Agents", which is itself in "VIPs"
#   bob           in "Power Users"
#   carol         disabled                        -> bind fails with data 533
#   dave          must change password at next logon (pwdLastSet=0) -> data 773
#   erin          account expired                 -> data 701
#   frank         locked out (one bad password at each start) -> data 775
#   henry         password expired                -> data 532
#   nina          in "#Ω Team (Nord) *" (in OU=Teams), which is itself in
#                 'Leads, Ost + Süd; "Nacht"' (in CN=Users): group names that need escaping
#                 in a DN, with non-ASCII letters
# Everyone's primary group is Domain Users (primaryGroupID 513).
# Every address is served with LDAP on 389 and LDAPS on 636 (StartTLS on 389 works too),
# with a certificate for the IP address from the test CA in .peers/samba-ca/ca.pem.
# Must run as root (Samba as a DC needs it). Installs Debian's Samba packages if missing.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PEERS="$ROOT/.peers"
TEMPLATE="$PEERS/samba-template"
CA_DIR="$PEERS/samba-ca"
INSTANCES="$PEERS/samba"
REALM=CORP.EXAMPLE.COM
DOMAIN=CORP
BASE="DC=corp,DC=example,DC=com"
ADMIN_PASSWORD='Adm1n-Passw0rd!'
SERVICE_PASSWORD='Svc-Passw0rd!'
# A template older than this is rebuilt: seeded passwords are dated at provisioning.
TEMPLATE_MAX_AGE_DAYS=30
# A template seeded by an older version of this script is rebuilt: bump on seed changes.
SEED_VERSION=2

say() { echo "samba.sh: $*"; }
die() { echo "samba.sh: error: $*" >&2; exit 1; }

usage() {
    echo "usage: $0 start NAME IP | stop NAME | status" >&2
    exit 2
}

need_root() {
    [ "$(id -u)" = 0 ] || die "must run as root (Samba as a domain controller requires it)"
}

ensure_packages() {
    local missing=()
    for pkg in samba-ad-dc samba-ad-provision ldap-utils krb5-user openssl; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} = 0 ] && return 0
    say "installing ${missing[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null || die "apt-get update failed"
    apt-get install -y -q "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
}

valid_name() {
    [[ "$1" =~ ^[a-z][a-z0-9-]{0,30}$ ]] || die "NAME must be lowercase letters, digits and '-': got '$1'"
}

valid_ip() {
    [[ "$1" =~ ^127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || die "IP must be a loopback address (127.x.y.z): got '$1'"
}

# Writes the smb.conf of a DC whose files live in $1 and that serves on $2.
write_smb_conf() {
    local dir=$1 ip=$2
    mkdir -p "$dir/etc" "$dir/run" "$dir/cache" "$dir/state" "$dir/bind-dns"
    cat >"$dir/etc/smb.conf" <<EOF
[global]
	netbios name = DESKGATE-DC
	realm = $REALM
	workgroup = $DOMAIN
	server role = active directory domain controller
	server services = ldap
	interfaces = $ip/8
	bind interfaces only = yes
	private dir = $dir/private
	lock directory = $dir
	state directory = $dir/state
	cache directory = $dir/cache
	pid directory = $dir/run
	binddns dir = $dir/bind-dns
	winbindd socket directory = $dir/run/winbindd
	ntp signd socket directory = $dir/run/ntp_signd
	logging = file
	log file = $dir/log.%m
	log level = 1
	idmap_ldb:use rfc2307 = yes
	ldap server require strong auth = no
	tls enabled = yes
	tls keyfile = $dir/tls/key.pem
	tls certfile = $dir/tls/cert.pem
	tls cafile = $CA_DIR/ca.pem
EOF
}

template_fresh() {
    [ -f "$TEMPLATE/.ready" ] || return 1
    [ "$(cat "$TEMPLATE/.seed" 2>/dev/null)" = "$SEED_VERSION" ] || return 1
    local made now
    made=$(cat "$TEMPLATE/.ready")
    now=$(date +%s)
    [ $((now - made)) -lt $((TEMPLATE_MAX_AGE_DAYS * 86400)) ]
}

make_template() {
    template_fresh && return 0
    local new="$TEMPLATE.new"
    rm -rf "$new" "$TEMPLATE"
    say "provisioning domain $REALM into $TEMPLATE (once; takes about 10 s)"
    samba-tool domain provision --targetdir="$new" --realm=$REALM --domain=$DOMAIN \
        --server-role=dc --dns-backend=NONE --use-rfc2307 --host-name=deskgate-dc \
        --adminpass="$ADMIN_PASSWORD" >"$PEERS/samba-provision.log" 2>&1 ||
        die "provisioning failed; see $PEERS/samba-provision.log"
    # Seeding works on the database files directly; no server runs yet.
    write_smb_conf "$new" 127.0.0.1
    local conf="$new/etc/smb.conf" sam="$new/private/sam.ldb"
    run() {
        samba-tool "$@" --configfile="$conf" -H "$sam" >>"$PEERS/samba-provision.log" 2>&1 ||
            die "samba-tool $1 $2 ${3:-} failed; see $PEERS/samba-provision.log"
    }

    say "seeding users and groups"
    # No lockout for anyone but frank (a password settings object that locks after one bad
    # password), so repeated test runs never lock the others; a maximum password age so
    # that an old password can be expired (everyone else is exempt).
    run domain passwordsettings set --complexity=off --history-length=0 --min-pwd-age=0 \
        --max-pwd-age=42 --account-lockout-threshold=0
    local name
    for name in alice bob carol erin frank henry nina; do
        run user add "$name" "Passw0rd-$name" --given-name="${name^}" --surname=Example \
            --mail-address="$name@corp.example.com" --company="Example Corp"
    done
    run user add dave "Passw0rd-dave" --given-name=Dave --surname=Example \
        --mail-address=dave@corp.example.com --company="Example Corp" --must-change-at-next-login
    run user add svc-deskgate "$SERVICE_PASSWORD" --description="deskgate service account"
    for name in svc-deskgate alice bob carol frank nina; do
        run user setexpiry "$name" --noexpiry
    done
    run domain passwordsettings pso create lock-after-one 1 --account-lockout-threshold=1 \
        --account-lockout-duration=10080 --reset-account-lockout-after=10080
    run domain passwordsettings pso apply lock-after-one frank
    run group add "Helpdesk Agents"
    run group add "VIPs"
    run group add "Power Users"
    run group addmembers "Helpdesk Agents" alice
    run group addmembers "VIPs" "Helpdesk Agents"
    run group addmembers "Power Users" bob
    run user disable carol
    run user setexpiry erin --days=0
    # pwdLastSet only takes 0 or -1 over LDAP; Samba's own "bypass last set" control lets
    # the seed date henry's password in 2020, so it is past the maximum age.
    /usr/bin/python3 - "$new" >>"$PEERS/samba-provision.log" 2>&1 <<'PY' || die "could not expire henry's password"
import sys, ldb
from samba.samdb import SamDB
from samba.auth import system_session
from samba.param import LoadParm
target = sys.argv[1]
lp = LoadParm()
lp.load(target + "/etc/smb.conf")
db = SamDB(url=target + "/private/sam.ldb", session_info=system_session(), lp=lp)
dn = db.search(base=db.domain_dn(), expression="(sAMAccountName=henry)", attrs=["dn"])[0].dn
m = ldb.Message()
m.dn = dn
m["pwdLastSet"] = ldb.MessageElement("132223104000000000", ldb.FLAG_MOD_REPLACE, "pwdLastSet")
db.modify(m, controls=["local_oid:1.3.6.1.4.1.7165.4.3.12:0"])
PY
    # samba-tool writes group names into DNs unescaped; these are made with escaped DNs.
    /usr/bin/python3 - "$new" >>"$PEERS/samba-provision.log" 2>&1 <<'PY' || die "could not add the groups with special names"
import sys, ldb
from samba.samdb import SamDB
from samba.auth import system_session
from samba.param import LoadParm
target = sys.argv[1]
lp = LoadParm()
lp.load(target + "/etc/smb.conf")
db = SamDB(url=target + "/private/sam.ldb", session_info=system_session(), lp=lp)
base = str(db.domain_dn())
db.add({"dn": "OU=Teams," + base, "objectClass": "organizationalUnit"})
def group(name, parent, account):
    dn = ldb.Dn(db, "CN=x," + parent)
    dn.set_component(0, "CN", name)
    db.add({"dn": dn, "objectClass": "group", "sAMAccountName": account})
    return dn
leads = group('Leads, Ost + Süd; "Nacht"', "CN=Users," + base, "leads-ost-sued")
team = group("#Ω Team (Nord) *", "OU=Teams," + base, "team-nord")
nina = db.search(base=base, expression="(sAMAccountName=nina)", attrs=["dn"])[0].dn
for holder, member in [(team, nina), (leads, team)]:
    m = ldb.Message()
    m.dn = holder
    m["member"] = ldb.MessageElement(str(member), ldb.FLAG_MOD_ADD, "member")
    db.modify(m)
print("special groups:", leads, team)
PY
    rm -f "$new/etc/smb.conf"
    echo "$SEED_VERSION" >"$new/.seed"
    date +%s >"$new/.ready"
    mv "$new" "$TEMPLATE"
    say "template ready"
}

make_ca() {
    [ -f "$CA_DIR/ca.pem" ] && [ -f "$CA_DIR/ca.key" ] && return 0
    say "creating test CA in $CA_DIR"
    mkdir -p "$CA_DIR"
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
        -keyout "$CA_DIR/ca.key" -out "$CA_DIR/ca.pem" -subj "/CN=deskgate test CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        >/dev/null 2>&1 || die "openssl could not create the CA"
    chmod 600 "$CA_DIR/ca.key"
}

make_cert() {
    local dir=$1 name=$2 ip=$3
    mkdir -p "$dir/tls"
    openssl req -newkey rsa:2048 -nodes -sha256 -keyout "$dir/tls/key.pem" -out "$dir/tls/req.pem" \
        -subj "/CN=$name" >/dev/null 2>&1 || die "openssl could not create a key for $name"
    printf 'subjectAltName=IP:%s,DNS:%s\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' \
        "$ip" "$name" >"$dir/tls/ext.cnf"
    openssl x509 -req -sha256 -days 825 -in "$dir/tls/req.pem" -CA "$CA_DIR/ca.pem" -CAkey "$CA_DIR/ca.key" \
        -CAcreateserial -out "$dir/tls/cert.pem" -extfile "$dir/tls/ext.cnf" >/dev/null 2>&1 ||
        die "openssl could not sign the certificate for $name"
    chmod 600 "$dir/tls/key.pem"
}

# The pid of DC $1 if it runs.
running_pid() {
    local pidfile="$INSTANCES/$1/run/samba.pid" pid
    [ -f "$pidfile" ] || return 1
    pid=$(tr -dc '0-9' <"$pidfile")
    [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = samba ] || return 1
    echo "$pid"
}

answers() {
    ldapsearch -x -LLL -o nettimeout=2 -H "ldap://$1" -s base -b "" defaultNamingContext >/dev/null 2>&1
}

print_addresses() {
    local name=$1 ip=$2
    say "$name serves ldap://$ip:389 (plain and StartTLS) and ldaps://$ip:636"
    say "  base DN $BASE, CA $CA_DIR/ca.pem, service account svc-deskgate@corp.example.com"
}

cmd_start() {
    local name=$1 ip=$2 dir="$INSTANCES/$1" pid
    valid_name "$name"
    valid_ip "$ip"
    need_root
    if pid=$(running_pid "$name"); then
        local was
        was=$(cat "$dir/ip" 2>/dev/null || true)
        [ "$was" = "$ip" ] || die "$name already runs on $was (pid $pid); stop it first"
        say "$name already running (pid $pid)"
        print_addresses "$name" "$ip"
        return 0
    fi
    answers "$ip" && die "something already answers LDAP on $ip:389"
    ensure_packages
    mkdir -p "$PEERS" "$INSTANCES"
    (
        flock 9
        make_template
        make_ca
    ) 9>"$PEERS/samba.lock"

    say "starting $name on $ip from the template"
    rm -rf "$dir"
    cp -a "$TEMPLATE" "$dir"
    echo "$ip" >"$dir/ip"
    write_smb_conf "$dir" "$ip"
    make_cert "$dir" "$name" "$ip"
    setsid samba -s "$dir/etc/smb.conf" -F --no-process-group -M single \
        >"$dir/samba.out" 2>&1 </dev/null &
    local i
    for i in $(seq 1 300); do
        answers "$ip" && break
        if [ "$i" -gt 20 ] && ! running_pid "$name" >/dev/null; then
            tail -20 "$dir/samba.out" >&2 || true
            die "samba for $name exited; see $dir/samba.out and $dir/log.samba"
        fi
        sleep 0.1
    done
    answers "$ip" || die "samba for $name did not answer on $ip:389 within 30 s; see $dir/log.samba"

    # Lockout is state, not seed data: one bad password locks frank on this DC.
    ldapwhoami -x -o nettimeout=5 -H "ldap://$ip" -D "frank@corp.example.com" -w wrong >/dev/null 2>&1 || true
    local answer
    answer=$(ldapwhoami -x -o nettimeout=5 -H "ldap://$ip" -D "frank@corp.example.com" -w Passw0rd-frank 2>&1 || true)
    [[ "$answer" == *"data 775"* ]] || die "frank did not get locked on $name: $answer"
    ldapsearch -x -LLL -o nettimeout=5 -H "ldap://$ip" -D "svc-deskgate@corp.example.com" -w "$SERVICE_PASSWORD" \
        -b "$BASE" "(sAMAccountName=alice)" dn >/dev/null 2>&1 || die "the service account cannot search on $name"
    say "$name running (pid $(running_pid "$name"))"
    print_addresses "$name" "$ip"
}

cmd_stop() {
    local name=$1 pid i
    valid_name "$name"
    need_root
    if ! pid=$(running_pid "$name"); then
        say "$name is not running"
        return 0
    fi
    say "stopping $name (pid $pid)"
    kill "$pid"
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "$name did not stop within 10 s; killing it"
        kill -9 "$pid"
    fi
    say "$name stopped"
}

cmd_status() {
    local dir name pid
    for dir in "$INSTANCES"/*/; do
        [ -d "$dir" ] || continue
        name=$(basename "$dir")
        if pid=$(running_pid "$name"); then
            say "$name running on $(cat "$dir/ip") (pid $pid)"
        else
            say "$name stopped"
        fi
    done
}

case "${1:-}" in
start) [ $# = 3 ] || usage; cmd_start "$2" "$3" ;;
stop) [ $# = 2 ] || usage; cmd_stop "$2" ;;
status) cmd_status ;;
*) usage ;;
esac
