if true { keep;
