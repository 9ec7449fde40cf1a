// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title SNO, the Smartnodes token.
/// @notice A plain ERC-20 whose only minter is the SmartnodesCore contract that deployed it.
/// There is no owner, no pause and no other privileged path: supply grows only through
/// `SmartnodesCore` (genesis allocation in its constructor, then the emission schedule).
contract SmartnodesToken is ERC20 {
    /// @notice The SmartnodesCore contract: the deployer, and the only address allowed to mint.
    address public immutable core;

    /// @notice `caller` tried to mint but is not the core contract.
    error NotCore(address caller);

    constructor() ERC20("Smartnodes", "SNO") {
        core = msg.sender;
    }

    /// @notice Mint `amount` to `to`. Only the core contract may call this.
    function mint(address to, uint256 amount) external {
        if (msg.sender != core) revert NotCore(msg.sender);
        _mint(to, amount);
    }
}
