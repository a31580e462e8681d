/* SPDX-License-Identifier: MIT */
/*
 * Included after <cmocka.h> by every unit test. cmocka's assertions end a
 * failing test with longjmp, but are not declared noreturn, so the clang
 * static analyser walks on past a failed assertion and reports the null or
 * garbage values that the assertion just ruled out. For the analyser only,
 * each assertion used here is an expression that stops when it fails.
 */
#ifndef CHOREO_CMOCKA_ANALYZER_H
#define CHOREO_CMOCKA_ANALYZER_H

#ifdef __clang_analyzer__
#include <stdlib.h>
#include <string.h>

#undef assert_true
#undef assert_false
#undef assert_int_equal
#undef assert_int_not_equal
#undef assert_memory_equal
#undef assert_memory_not_equal
#undef assert_non_null
#undef assert_null
#undef assert_string_equal
#undef fail
#define assert_true(c)               ((c) ? (void)0 : abort())
#define assert_false(c)              (!(c) ? (void)0 : abort())
#define assert_int_equal(a, b)       ((a) == (b) ? (void)0 : abort())
#define assert_int_not_equal(a, b)   ((a) != (b) ? (void)0 : abort())
#define assert_memory_equal(a, b, n) (memcmp((a), (b), (n)) == 0 ? (void)0 : abort())
#define assert_memory_not_equal(a, b, n) (memcmp((a), (b), (n)) != 0 ? (void)0 : abort())
#define assert_non_null(p)           ((p) != NULL ? (void)0 : abort())
#define assert_null(p)               ((p) == NULL ? (void)0 : abort())
#define assert_string_equal(a, b)    (strcmp((a), (b)) == 0 ? (void)0 : abort())
#define fail()                       abort()
#endif

#endif
