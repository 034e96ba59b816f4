// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vhca-guest: runs a command as a guest that owns one VF of vhca0, the way
 * a VM owns a VF passed through to it, and cannot leave it.
 *
 *   vhca-guest [--vf N] [--name NAME] [--run-dir DIR] [--net host|private]
 *              [--share DIR]... [--user USER] -- CMD [ARGS...]
 *
 * The guest gets its own mount, IPC, UTS and PID namespaces (and network,
 * unless --net host), a filesystem that shows only its VF of vhcad's view
 * and is read-only outside its own /tmp, /run, /dev/shm and the shares
 * (view.c), and no privilege at all (init.c).  Before the guest runs
 * anything, vhcad binds the VF to the guest's PID namespace
 * (VHCA_MGMT_BIND_GUEST): from then on the daemon itself serves that VF
 * to that guest only, and nothing else to it.
 *
 * This process stays outside, as the guest's face to whoever started it
 * (a shell, mpirun): signals sent to it go to CMD, CMD's exit status (or
 * the signal that killed it) becomes its own, and if it is killed the
 * whole guest dies with it (the init's parent-death signal).
 *
 * A VF belongs to one guest at a time: DIR/guests/vhca0_vfN.lock carries an
 * exclusive flock() taken before anything else and held by an fd that is
 * deliberately not close-on-exec, so the VF stays taken while any process
 * of the guest lives.
 *
 * Exit status: CMD's, or 125 when vhca-guest itself fails (usage, no such
 * VF, VF owned by another guest, setup), 126 when CMD cannot be executed,
 * 127 when it is not found (the conventions of env(1) and timeout(1)).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <vhca/mgmt.h>
#include <vhca/text.h>

#include "guest.h"
#include "mgmt_client.h"
#include "vf.h"


/* ---- messages -------------------------------------------------------------- */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: vhca-guest [--vf N] [--name NAME] [--run-dir DIR] [--net host|private]\n"
		"                  [--share DIR]... [--user USER] -- CMD [ARGS...]\n"
		"Runs CMD as a guest owning VF N of " GUEST_PF_NAME ": own mount, IPC, UTS, PID\n"
		"and network namespaces, a view with that VF only, a read-only filesystem\n"
		"but for a private /tmp, /run and /dev/shm, no privileges.  Must run as root.\n"
		"\n"
		"  --vf N           the VF (default: the lowest one no guest owns)\n"
		"  --name NAME      the guest's hostname (default " GUEST_PF_NAME "-vfN)\n"
		"  --run-dir DIR    vhcad's run dir (default $VHCA_RUN_DIR, else " VF_DEFAULT_RUN_DIR ")\n"
		"  --net private    own network namespace, loopback only (default)\n"
		"  --net host       the host's network (MPI: PMIx and out-of-band TCP)\n"
		"  --share DIR      DIR of the host, writable, at the same path (repeatable)\n"
		"  --user USER      CMD runs as USER (name or uid) instead of uid 0\n"
		"\n"
		"Exit status: CMD's; 125 if vhca-guest fails, 126 if CMD cannot run,\n"
		"127 if CMD is not found.\n");
}

const char tool_name[] = "vhca-guest";

#define usage_error tool_usage_error

/* ---- command line ------------------------------------------------------------ */

/* Hostname rules (RFC 1123 labels joined by dots) so UTS accepts it as is. */
static bool valid_guest_name(const char *name)
{
	size_t len = strlen(name);

	if (!len || len > GUEST_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char ch = name[i];
		bool edge = i == 0 || i == len - 1 || name[i - 1] == '.' ||
			    name[i + 1] == '.';

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9'))
			continue;
		if ((ch == '-' || ch == '.') && !edge)
			continue;
		return false;
	}
	return true;
}

/* --user: a name of the passwd database or a uid, never root's. */
static void parse_user(struct guest *g, const char *arg)
{
	unsigned long uid;
	struct passwd *pw;

	if (g->as_user)
		usage_error("--user given twice");
	errno = 0;
	pw = getpwnam(arg);
	if (!pw && vhca_parse_decimal(arg, strlen(arg), UINT32_MAX - 1, &uid))
		pw = getpwuid((uid_t)uid);
	if (!pw)
		usage_error("--user '%s' is no user of this system", arg);
	if (pw->pw_uid == 0)
		usage_error("--user '%s' is root; a guest runs as root without --user (and without privileges)",
			    arg);
	g->as_user = true;
	g->uid = pw->pw_uid;
	g->gid = pw->pw_gid;
	g->user_name = strdup(pw->pw_name);
	if (!g->user_name)
		guest_fail("out of memory");
}

static void add_share(struct guest *g, const char *dir)
{
	if (g->num_shares == GUEST_SHARES_MAX)
		usage_error("at most %d shares", GUEST_SHARES_MAX);
	if (!*dir)
		usage_error("--share needs a directory");
	g->shares[g->num_shares] = strdup(dir);
	if (!g->shares[g->num_shares])
		guest_fail("out of memory");
	g->num_shares++;
}

static void parse_command_line(struct guest *g, int argc, char **argv)
{
	static const struct option options[] = {
		{ "vf", required_argument, NULL, 'v' },
		{ "name", required_argument, NULL, 'n' },
		{ "run-dir", required_argument, NULL, 'r' },
		{ "net", required_argument, NULL, 'N' },
		{ "share", required_argument, NULL, 's' },
		{ "user", required_argument, NULL, 'u' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool net_given = false;
	int c;

	opterr = 0;
	/* "+": stop at CMD, whose own options are none of our business. */
	while ((c = getopt_long(argc, argv, "+:h", options, NULL)) != -1) {
		switch (c) {
		case 'v':
			if (g->vf_given)
				usage_error("--vf given twice");
			g->vf = vf_parse_option(optarg);
			g->vf_given = true;
			break;
		case 'n':
			if (g->name_given)
				usage_error("--name given twice");
			if (!valid_guest_name(optarg))
				usage_error("--name '%s' is not a valid host name (1 to %d of a-z A-Z 0-9, '-' and '.' inside)",
					    optarg, GUEST_NAME_MAX);
			strcpy(g->name, optarg);
			g->name_given = true;
			break;
		case 'r':
			if (g->run_dir_arg)
				usage_error("--run-dir given twice");
			if (!*optarg)
				usage_error("--run-dir needs a directory");
			g->run_dir_arg = optarg;
			break;
		case 'N':
			if (net_given)
				usage_error("--net given twice");
			if (strcmp(optarg, "host") && strcmp(optarg, "private"))
				usage_error("--net '%s': 'host' or 'private'",
					    optarg);
			g->host_net = !strcmp(optarg, "host");
			net_given = true;
			break;
		case 's':
			add_share(g, optarg);
			break;
		case 'u':
			parse_user(g, optarg);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			tool_bad_option(c, argv);
		}
	}
	if (optind >= argc)
		usage_error("no command given (vhca-guest [options] -- CMD [ARGS...])");
	g->cmd = &argv[optind];

	if (!g->run_dir_arg)
		g->run_dir_arg = vf_default_run_dir();
}

/*
 * Shares, resolved: each an existing directory other than /, neither
 * holding the run dir nor inside it (the run dir's management socket and
 * full view must stay out of the guest's reach).  An Open MPI launcher's
 * session directory (where PMIx and the ranks of one job meet) is shared
 * without being asked: the guest's /tmp is its own.
 */
static void resolve_shares(struct guest *g)
{
	static const char *const launcher_dirs[] = {
		"OMPI_MCA_orte_jobfam_session_dir",	/* Open MPI 4 */
		"PMIX_SERVER_TMPDIR",
	};
	size_t rlen = strlen(g->run_dir);

	for (size_t i = 0; i < sizeof(launcher_dirs) / sizeof(launcher_dirs[0]);
	     i++) {
		const char *dir = getenv(launcher_dirs[i]);

		if (dir && *dir == '/' && g->num_shares < GUEST_SHARES_MAX)
			add_share(g, dir);
	}
	for (size_t i = 0; i < g->num_shares; i++) {
		char *real = realpath(g->shares[i], NULL);
		size_t len;
		struct stat st;

		if (!real || stat(real, &st) || !S_ISDIR(st.st_mode))
			guest_fail("share %s: %s", g->shares[i],
				   real ? "not a directory" : strerror(errno));
		len = strlen(real);
		if (!strcmp(real, "/") ||
		    (!strncmp(g->run_dir, real, len) &&
		     (g->run_dir[len] == '/' || !g->run_dir[len])) ||
		    (!strncmp(real, g->run_dir, rlen) && real[rlen] == '/'))
			guest_fail("share %s: holds or lies in the run dir %s; a guest must not reach it",
				   g->shares[i], g->run_dir);
		free(g->shares[i]);
		g->shares[i] = real;
	}
	/* The same directory twice (a --share of the session dir) once. */
	for (size_t i = 0; i < g->num_shares; i++)
		for (size_t j = i + 1; j < g->num_shares; j++)
			if (!strcmp(g->shares[i], g->shares[j])) {
				free(g->shares[j]);
				g->shares[j--] = g->shares[--g->num_shares];
			}
}

/* ---- the VF and the binding with vhcad ------------------------------------------ */

static void guest_owner_name(unsigned int vf, char *buf, size_t size, void *ctx)
{
	const struct guest *g = ctx;

	if (g->name_given)
		snprintf(buf, size, "%s", g->name);
	else
		snprintf(buf, size, GUEST_PF_NAME "-vf%u", vf);
}

/* Picks the VF (given, or the lowest free one) and takes it (vf.h). */
static void choose_and_take_vf(struct guest *g)
{
	struct vf_claim claim = {
		.run_dir = g->run_dir,
		.sys_path = g->sys_path,
		.vf_given = g->vf_given,
		.vf = g->vf,
		.owner_kind = "guest",
		.owner_name = guest_owner_name,
		.owner_ctx = g,
	};

	vf_claim(&claim);
	g->vf = claim.vf;
	g->uverbs = claim.uverbs;
	g->lock_fd = claim.lock_fd;
	if (!g->name_given)
		snprintf(g->name, sizeof(g->name), GUEST_PF_NAME "-vf%u", g->vf);
}

/* Asks vhcad to serve VF g->vf to the guest whose init is @init_pid only. */
static void bind_vf_to_guest(const struct guest *g, int mgmt_fd,
			     pid_t init_pid)
{
	struct vhca_mgmt_guest guest = { .vf = g->vf, .init_pid = init_pid };
	char what[64];
	int err;

	snprintf(what, sizeof(what), "bind " GUEST_VF_PREFIX "%u to the guest",
		 g->vf);
	err = mgmt_call(mgmt_fd, VHCA_MGMT_BIND_GUEST, &guest, sizeof(guest),
			-1, what);
	if (err)
		guest_fail("vhcad refused to bind " GUEST_VF_PREFIX "%u to the guest: %s",
			   g->vf, strerror(-err));
}

/* ---- outside: the guest's face to its launcher ------------------------------------- */

/* Signals a launcher or a shell sends to a job: all passed on to CMD. */
static const int forwarded_signals[] = {
	SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGTERM,
	SIGCONT, SIGWINCH, SIGTSTP, SIGTTIN, SIGTTOU, SIGPIPE, SIGXCPU,
};

static void ignore_signal(int sig)
{
	(void)sig;
}

/*
 * Blocked here and caught, so that sigwaitinfo() takes them in order;
 * the handler only matters for the init, whose signals without a handler
 * the kernel drops (SIGNAL_UNKILLABLE).
 */
static void take_signals(sigset_t *set)
{
	struct sigaction sa = { .sa_handler = ignore_signal };

	sigemptyset(set);
	sigaddset(set, SIGCHLD);
	for (size_t i = 0;
	     i < sizeof(forwarded_signals) / sizeof(forwarded_signals[0]); i++)
		sigaddset(set, forwarded_signals[i]);
	sigprocmask(SIG_BLOCK, set, NULL);
	for (size_t i = 0;
	     i < sizeof(forwarded_signals) / sizeof(forwarded_signals[0]); i++)
		sigaction(forwarded_signals[i], &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
}

/* Ends as CMD ended: the same exit code, or death by the same signal. */
static _Noreturn void end_like(int status)
{
	struct rlimit no_core = { 0, 0 };
	sigset_t all;

	if (WIFEXITED(status))
		exit(WEXITSTATUS(status));
	if (!WIFSIGNALED(status))
		exit(GUEST_EXIT_FAILED);
	/* CMD dumped its own core, if any; ours would only mislead. */
	setrlimit(RLIMIT_CORE, &no_core);
	signal(WTERMSIG(status), SIG_DFL);
	sigfillset(&all);
	sigprocmask(SIG_UNBLOCK, &all, NULL);
	raise(WTERMSIG(status));
	exit(128 + WTERMSIG(status));
}

/*
 * Waits for the init, passing signals on to it (it passes them to CMD),
 * then ends as CMD ended (the status the init wrote to @status_fd), or as
 * the init itself did if it never wrote one.
 */
static _Noreturn void watch_guest(pid_t init, int status_fd,
				  const sigset_t *set)
{
	for (;;) {
		siginfo_t info;
		int status, cmd_status;
		int sig = sigwaitinfo(set, &info);

		if (sig < 0)
			continue;
		if (sig != SIGCHLD) {
			kill(init, sig);
			continue;
		}
		if (waitpid(init, &status, WNOHANG) != init)
			continue;
		if (read(status_fd, &cmd_status, sizeof(cmd_status)) ==
		    sizeof(cmd_status))
			end_like(cmd_status);
		end_like(WIFSIGNALED(status) ? status :
			 WIFEXITED(status) && WEXITSTATUS(status) ?
						  status :
						  (GUEST_EXIT_FAILED << 8));
	}
}

static void enter_namespaces(struct guest *g)
{
	char node[PATH_MAX];
	struct stat st;
	int flags = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWPID;

	/* The host's marker node, before /dev is covered. */
	snprintf(node, sizeof(node),
		 GUEST_UVERBS_DIR "/" GUEST_UVERBS_PREFIX "%u", g->uverbs);
	if (stat(node, &st) || !S_ISCHR(st.st_mode))
		guest_fail("%s (the node of " GUEST_VF_PREFIX "%u) is missing or not a character device",
			   node, g->vf);
	g->node_rdev = st.st_rdev;

	if (!g->host_net)
		flags |= CLONE_NEWNET;
	/* CLONE_NEWPID applies to our children: the init forked next. */
	if (unshare(flags))
		guest_fail("cannot create the guest's namespaces: %s",
			   strerror(errno));
	guest_build_view(g);
}

int main(int argc, char **argv)
{
	struct guest g = { .lock_fd = -1 };
	int go[2], status[2], mgmt_fd;
	sigset_t set;
	pid_t init;

	parse_command_line(&g, argc, argv);
	if (geteuid() != 0)
		guest_fail("must run as root (it creates namespaces and mounts)");

	g.run_dir = realpath(g.run_dir_arg, NULL);
	if (!g.run_dir)
		guest_fail("run dir %s: %s", g.run_dir_arg, strerror(errno));
	if (!strcmp(g.run_dir, "/"))
		guest_fail("run dir / cannot be covered by a guest");
	g.sys_path = guest_path_join(g.run_dir, "sys");
	resolve_shares(&g);

	choose_and_take_vf(&g);
	mgmt_fd = mgmt_connect(g.run_dir);
	enter_namespaces(&g);

	if (pipe2(go, O_CLOEXEC) || pipe2(status, O_CLOEXEC))
		guest_fail("pipe: %s", strerror(errno));
	take_signals(&set);
	init = fork();
	if (init < 0)
		guest_fail("cannot start the guest: %s", strerror(errno));
	if (init == 0) {
		close(mgmt_fd);
		close(go[1]);
		close(status[0]);
		guest_run_init(&g, go[0], status[1]);
	}
	close(go[0]);
	close(status[1]);
	/*
	 * Bound before the guest runs anything of its own; on failure the
	 * init sees EOF on go[] and ends.
	 */
	bind_vf_to_guest(&g, mgmt_fd, init);
	close(mgmt_fd);
	if (write(go[1], "g", 1) != 1)
		guest_fail("cannot start the guest: %s", strerror(errno));
	close(go[1]);
	watch_guest(init, status[0], &set);
}
