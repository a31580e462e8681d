/* SPDX-License-Identifier: MIT */
#ifndef CHOREO_VERSION_H
#define CHOREO_VERSION_H
#define CHOREO_VERSION "0.1.0"
#endif
