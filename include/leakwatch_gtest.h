/*
 * leakwatch_gtest.h — a GoogleTest event listener that fails every test
 * that leaves a thread behind, naming the test and describing the thread
 * (leakwatch.h's leakwatch_verify_none after each test, leakwatch_mark
 * before it). Install it in main, before RUN_ALL_TESTS:
 *
 *     #include <leakwatch_gtest.h>
 *     int main(int argc, char **argv) {
 *         ::testing::InitGoogleTest(&argc, argv);
 *         leakwatch::InstallThreadLeakListener();   // 1000 ms to let threads end
 *         return RUN_ALL_TESTS();
 *     }
 *
 * and run the tests under the preload (LD_PRELOAD=libleakwatch.so, or
 * `leakwatch run -- ./tests`). Without it every test passes as before, and
 * one line on stderr says the threads were not checked.
 *
 * GoogleTest calls the listeners' OnTestEnd in the reverse order of their
 * installation, so this one runs before the default printer's: the failure
 * is printed under the test, which is reported FAILED.
 */
#ifndef LEAKWATCH_GTEST_H
#define LEAKWATCH_GTEST_H

#include <gtest/gtest.h>

#include <cstdlib>

#include "leakwatch.h"

namespace leakwatch {

class ThreadLeakListener : public ::testing::EmptyTestEventListener {
  public:
    explicit ThreadLeakListener(unsigned timeout_ms = 1000) : timeout_ms_(timeout_ms) {}

    void OnTestStart(const ::testing::TestInfo &) override { leakwatch_mark(); }

    void OnTestEnd(const ::testing::TestInfo &test) override
    {
        char *report = leakwatch_verify_none(timeout_ms_);
        if (!report)
            return;
        ADD_FAILURE_AT(test.file() ? test.file() : "", test.line())
            << "leakwatch: " << test.test_suite_name() << "." << test.name() << " leaked threads: " << report;
        std::free(report);
    }

  private:
    unsigned timeout_ms_;
};

/* Append the listener to GoogleTest's (which owns it from then on). */
inline void InstallThreadLeakListener(unsigned timeout_ms = 1000)
{
    ::testing::UnitTest::GetInstance()->listeners().Append(new ThreadLeakListener(timeout_ms));
}

}   // namespace leakwatch

#endif
