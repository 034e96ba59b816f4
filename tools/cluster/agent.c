// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vhca-agent: runs commands in the VMs of a vhca-cluster (agent.h,
 * docs/cluster.md).
 *
 *   vhca-agent serve [--address A] [--port P]
 *       in a VM (vhca-vm ... -- vhca-agent serve): the key comes in the
 *       environment (VHCA_AGENT_KEY, hex), which vhca-vm carries into the
 *       VM without it ever being on a command line or in a file the VM
 *       sees; the address defaults to the VM's bridge address
 *       (VHCA_VM_ADDRESS).
 *   vhca-agent exec [--port P] --key-file F [--watch-pid PID] [--name N]
 *                   ADDRESS CMD [ARGS...]
 *       on the host: CMD's words joined by spaces run with sh -c in the
 *       VM, as ssh runs them; exit status CMD's, 255 if the VM was lost.
 *
 * vhca-cluster is its user: "vhca-cluster exec HOST CMD..." (Open MPI's
 * plm_rsh_agent) finds the VM's address, key file and vhca-vm pid and
 * runs "vhca-agent exec".
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vhca/text.h>

#include "agent.h"

const char tool_name[] = "vhca-agent";

static void usage(FILE *out)
{
	fprintf(out,
		"usage: vhca-agent serve [--address A] [--port P]\n"
		"       vhca-agent exec [--port P] --key-file F [--watch-pid PID] [--name NAME]\n"
		"                       ADDRESS CMD [ARGS...]\n"
		"Runs commands in the VMs of a vhca-cluster (docs/cluster.md).\n"
		"  serve: in a VM, with the VM's key in $" AGENT_KEY_ENV " (hex); listens on\n"
		"         A (default $VHCA_VM_ADDRESS), port P (default %d)\n"
		"  exec:  runs CMD (its words joined by spaces, with sh -c, as ssh does) in\n"
		"         the VM at ADDRESS; exit status CMD's, 255 if the VM is lost.\n"
		"         --watch-pid: the VM's vhca-vm; its end ends the command at once\n",
		AGENT_PORT_DEFAULT);
}

static unsigned int parse_port(const char *text)
{
	unsigned long value;

	if (!vhca_parse_decimal(text, strlen(text), 65535, &value) || !value)
		tool_usage_error("--port '%s': 1 to 65535", text);
	return (unsigned int)value;
}

/* The key from the environment, then wiped from it: commands never see it. */
static void key_from_env(unsigned char key[AGENT_KEY_LEN])
{
	char *text = getenv(AGENT_KEY_ENV);

	if (!text || !agent_parse_key(text, key))
		tool_fail("$" AGENT_KEY_ENV " must hold the VM's key (%d hex digits)",
			  2 * AGENT_KEY_LEN);
	/* The environment block itself, which /proc/PID/environ shows. */
	memset(text, 'x', strlen(text));
	unsetenv(AGENT_KEY_ENV);
}

static void key_from_file(const char *path, unsigned char key[AGENT_KEY_LEN])
{
	char text[2 * AGENT_KEY_LEN + 2] = "";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, text, sizeof(text) - 1) : -1;

	if (fd < 0)
		tool_fail("cannot read the key %s: %s", path, strerror(errno));
	close(fd);
	if (n <= 0 || !agent_parse_key(text, key))
		tool_fail("%s does not hold a key (%d hex digits)", path, 2 * AGENT_KEY_LEN);
}

/* CMD's words joined by single spaces, as ssh sends them. */
static char *join(char **words)
{
	size_t len = 1;
	char *cmd, *p;

	for (char **w = words; *w; w++)
		len += strlen(*w) + 1;
	if (len > AGENT_CMD_MAX)
		tool_fail("the command is longer than %d bytes", AGENT_CMD_MAX);
	cmd = p = malloc(len);
	if (!cmd)
		tool_fail("out of memory");
	*p = '\0';
	for (char **w = words; *w; w++)
		p += sprintf(p, "%s%s", w == words ? "" : " ", *w);
	return cmd;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "address", required_argument, NULL, 'a' },
		{ "port", required_argument, NULL, 'p' },
		{ "key-file", required_argument, NULL, 'k' },
		{ "watch-pid", required_argument, NULL, 'w' },
		{ "name", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *mode, *address = NULL, *key_file = NULL, *name = NULL;
	unsigned int port = AGENT_PORT_DEFAULT;
	unsigned char key[AGENT_KEY_LEN];
	unsigned long pid = 0;
	int c;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? TOOL_EXIT_FAILED : 0;
	}
	mode = argv[1];
	if (strcmp(mode, "serve") && strcmp(mode, "exec"))
		tool_usage_error("unknown command '%s' (serve or exec)", mode);
	argv++;
	argc--;
	opterr = 0;
	/* "+": stop at CMD, whose own options are none of ours. */
	while ((c = getopt_long(argc, argv, "+:h", options, NULL)) != -1) {
		switch (c) {
		case 'a':
			address = optarg;
			break;
		case 'p':
			port = parse_port(optarg);
			break;
		case 'k':
			key_file = optarg;
			break;
		case 'w':
			if (!vhca_parse_decimal(optarg, strlen(optarg), 1 << 22, &pid) || !pid)
				tool_usage_error("--watch-pid '%s' is not a pid", optarg);
			break;
		case 'n':
			name = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			tool_bad_option(c, argv);
		}
	}
	if (!strcmp(mode, "serve")) {
		if (optind != argc)
			tool_usage_error("serve takes no arguments");
		if (!address)
			address = getenv("VHCA_VM_ADDRESS");
		if (!address || !*address)
			tool_usage_error("serve needs --address (or $VHCA_VM_ADDRESS: vhca-vm --net)");
		key_from_env(key);
		agent_serve(address, port, key);
	}
	if (argc - optind < 2)
		tool_usage_error("exec needs ADDRESS and CMD");
	if (!key_file)
		tool_usage_error("exec needs --key-file");
	key_from_file(key_file, key);
	address = argv[optind];
	return agent_exec(address, port, key, (int)pid, name ? name : address,
			  join(&argv[optind + 1]));
}
