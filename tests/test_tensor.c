/* Tests of mem, utils and tensor. */
#include "test.h"
#include "mem.h"
#include "tensor.h"
#include "utils.h"

#include <string.h>

TEST(tensor_create_fill_get)
{
    uint64_t shape[3] = {2, 3, 4};
    struct Tensor *t = tensor_zeros(3, shape, DT_FLOAT64);
    EXPECT_EQ_INT(tensor_numel(t), 24);
    EXPECT_EQ_INT(t->stride[0], 12);
    EXPECT_EQ_INT(t->stride[2], 1);
    uint64_t idx[3] = {1, 2, 3};
    EXPECT_NEAR(tensor_get(t, idx), 0.0, 0);
    tensor_fill(t, 2.5);
    EXPECT_NEAR(tensor_get(t, idx), 2.5, 0);
    tensor_free(t);
}
