/* SPDX-License-Identifier: MIT */
/*
 * The values of choreo.conf(5) that are more than a number or a name: the
 * listen list, the ECS resolvers, the refresh mode, roles, peer addresses,
 * sources and key ids. Custom parsers for the conf engine (conf.h): each
 * reports a bad value with conf_bad_value() and sets nothing then.
 */
#ifndef CHOREO_CONFIG_VALUES_H
#define CHOREO_CONFIG_VALUES_H

#include "conf.h"

#define CONFIG_VALUE_PARSER(name) \
	int name(struct conf *c, const struct conf_key *k, void *obj, char *v)

CONFIG_VALUE_PARSER(config_parse_listen);        /* [dns] listen, into struct config */
CONFIG_VALUE_PARSER(config_parse_resolvers);     /* [dns] ecs_resolvers */
CONFIG_VALUE_PARSER(config_parse_refresh);       /* [daemon] element_refresh */
CONFIG_VALUE_PARSER(config_parse_gateway_down);  /* [daemon] on_gateway_down */
CONFIG_VALUE_PARSER(config_parse_role);          /* [daemon] role */
CONFIG_VALUE_PARSER(config_parse_peer_listen);   /* [daemon] peer_listen */
CONFIG_VALUE_PARSER(config_parse_peer_role);     /* [peer] role, into struct config_peer */
CONFIG_VALUE_PARSER(config_parse_peer_address);  /* [peer] address */
CONFIG_VALUE_PARSER(config_parse_peer_from);     /* [peer] from */
CONFIG_VALUE_PARSER(config_parse_peer_keys);     /* [peer] key */

#endif
